package etcd_test

// The command runs in a process group of its own: a CLI it started (the
// native binary npm's codex.js spawns, a shell wrapper's child) is stopped
// with it, never left live with a login another host is given.

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lesseeViaWrapper is lessee, with the agent a grandchild: the command is
// a shell that starts it and then lingers.
func lesseeViaWrapper(t *testing.T, env []string, globals []string, runArgs ...string) *exec.Cmd {
	t.Helper()
	args := append(append(append([]string{}, globals...), "run"), runArgs...)
	args = append(args, "--", "sh", "-c", `env `+roleEnv+`=agent "$0"; echo wrapper-done`, os.Args[0])
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = env
	// Never a terminal's foreground job, even when the tests run in one:
	// the command gets a group of its own.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A file, not a pipe: a grandchild that outlived the lessee must not
	// hold cmd.Wait up.
	out, err := os.CreateTemp(t.TempDir(), "lessee-out")
	require.NoError(t, err)
	t.Cleanup(func() { _ = out.Close() })
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	return cmd
}

// aliceThroughAWrapper leases alice to agent A, a grandchild of its run,
// and waits until A is alive; then, by the time the next lessee, B, may
// have alice (it waits for her), stop leaves A's lessee dead or paused,
// and no two agents may have held her at once.
func aliceThroughAWrapper(t *testing.T, stop func(a *exec.Cmd, waitB func())) {
	t.Helper()
	c := sharedCluster(t)
	globals := []string{"--endpoints", c.endpointList(), "--key-file", writeKey(t), "--prefix", testPrefix(t)}
	importAll(t, globals, "alice")
	log := filepath.Join(t.TempDir(), "agents.log")
	a := lesseeViaWrapper(t, agentEnv(log, "A", 20*time.Second, 0), globals,
		"--seat", filepath.Join(t.TempDir(), "seatA"), "--sub", "alice")
	waitFor(t, 10*time.Second, func() bool { return countEvents(t, log, "alive", "A") >= 2 })
	stop(a, func() {
		b, bout := lessee(t, agentEnv(log, "B", 1500*time.Millisecond, 0), globals, "--sub", "alice", "--wait", "60s")
		require.NoError(t, b.Wait(), "%s", bout)
	})
	requireExclusive(t, readAgentLog(t, log))
}

func TestAKilledLesseesGrandchildIsStoppedBeforeAnotherHostGetsTheLogin(t *testing.T) {
	aliceThroughAWrapper(t, func(a *exec.Cmd, waitB func()) {
		require.NoError(t, a.Process.Kill())
		_ = a.Wait()
		waitB()
	})
}

func TestAPausedLesseesGrandchildIsStoppedBeforeAnotherHostGetsTheLogin(t *testing.T) {
	aliceThroughAWrapper(t, func(a *exec.Cmd, waitB func()) {
		require.NoError(t, a.Process.Signal(syscall.SIGSTOP))
		waitB() // B waits for alice while A's lessee is paused past its TTL
		require.NoError(t, a.Process.Signal(syscall.SIGCONT))
		_ = a.Wait()
	})
}
