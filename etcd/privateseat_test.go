package etcd_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A run without --seat whose lease is refused (its sub leased elsewhere)
// leaves no private seat behind, not even its lock file.
func TestARefusedRunLeavesNoPrivateSeat(t *testing.T) {
	c := sharedCluster(t)
	globals := []string{"--endpoints", c.endpointList(), "--key-file", writeKey(t), "--prefix", testPrefix(t)}
	importAll(t, globals, "alice")
	tmp := t.TempDir()
	log := filepath.Join(t.TempDir(), "agents.log")
	a, _ := lessee(t, agentEnv(log, "A", 20e9, 0), globals, "--sub", "alice", "--seat", filepath.Join(t.TempDir(), "seatA"))
	t.Cleanup(func() { _ = a.Process.Kill(); _ = a.Wait() })
	waitFor(t, 10e9, func() bool { return countEvents(t, log, "alive", "A") >= 1 })
	cmd := exec.Command(os.Args[0], append(append([]string{}, globals...), "run", "--sub", "alice", "--", "true")...)
	cmd.Env = cliEnv("TMPDIR=" + tmp)
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "alice is leased: %s", out)
	left, err := filepath.Glob(filepath.Join(tmp, fmt.Sprintf("credslots-etcd-%d", os.Getuid()), "seat-*"))
	require.NoError(t, err)
	assert.Empty(t, left, "the refused run's private seat is left behind")
}
