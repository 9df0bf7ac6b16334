//go:build linux

package credslots

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/clilock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startNamed copies /bin/sleep to a temp dir under name and starts it. The
// process is killed and reaped at cleanup unless the test did so.
func startNamed(t *testing.T, name string) *exec.Cmd {
	t.Helper()
	src, err := os.Open("/bin/sleep")
	if err != nil {
		t.Skipf("no /bin/sleep: %v", err)
	}
	defer src.Close()
	path := filepath.Join(t.TempDir(), name)
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())

	cmd := exec.Command(path, "30")
	// Start returns once the child has exec'd (os/exec waits for the exec
	// to succeed), so /proc already shows the new executable.
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// busyFor is the busy-signal ProcessGuard reports for cmd under name.
func busyFor(name string, cmd *exec.Cmd) string {
	return name + " (pid " + strconv.Itoa(cmd.Process.Pid) + ")"
}

func TestProcessGuardReportsARunningProcess(t *testing.T) {
	const name = "credslots-test-proc"
	cmd := startNamed(t, name)

	got := ProcessGuard(name)()
	require.Len(t, got, 1, "%v", got)
	assert.Equal(t, busyFor(name, cmd), got[0])
	assert.Contains(t, got[0], name)
	assert.Contains(t, got[0], strconv.Itoa(cmd.Process.Pid))

	// Other names, and a name among several.
	assert.Empty(t, ProcessGuard("credslots-test-pro", "credslots-test-proc2")())
	assert.Equal(t, []string{busyFor(name, cmd)}, ProcessGuard("codex-never-running", name)())

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	assert.Empty(t, ProcessGuard(name)(), "a reaped process is gone")
}

func TestProcessGuardWithoutNames(t *testing.T) {
	startNamed(t, "credslots-test-proc")
	assert.Empty(t, ProcessGuard()())
	assert.Empty(t, ProcessGuard("")())
	assert.Empty(t, ProcessGuard("", "")())
}

func TestProcessGuardLongName(t *testing.T) {
	const name = "credslots-test-long-process-name" // longer than the kernel's 15-byte comm
	require.Greater(t, len(name), 15)
	cmd := startNamed(t, name)
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm")
	require.NoError(t, err)
	require.Equal(t, name[:15], strings.TrimSpace(string(comm)), "the kernel cuts comm")

	assert.Equal(t, []string{busyFor(name, cmd)}, ProcessGuard(name)(), "matched through the executable's link")
	assert.Empty(t, ProcessGuard(name[:15])(), "the executable's full name is compared where it can be read")
}

// TestProcessGuardCommFallback checks the command-name fallback used where
// the executable's link cannot be read: a zombie (killed, not yet reaped)
// has no executable link but keeps its comm.
func TestProcessGuardCommFallback(t *testing.T) {
	const name = "credslots-test-zombie-process"
	cmd := startNamed(t, name)
	pid := cmd.Process.Pid
	require.NoError(t, cmd.Process.Kill())
	// Wait for the kernel to make it a zombie, without reaping it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		require.NoError(t, err)
		if _, rest, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(rest, "Z") {
			break
		}
		require.True(t, time.Now().Before(deadline), "process %d never became a zombie", pid)
		time.Sleep(5 * time.Millisecond)
	}
	_, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	require.Error(t, err, "a zombie has no executable link")

	got, ok := clilock.ProcessName(pid, map[string]bool{name: true})
	assert.True(t, ok, "a long name matches on its first 15 bytes")
	assert.Equal(t, name, got)
	got, ok = clilock.ProcessName(pid, map[string]bool{name[:15]: true})
	assert.True(t, ok, "a name of exactly 15 bytes matches comm")
	assert.Equal(t, name[:15], got)
	_, ok = clilock.ProcessName(pid, map[string]bool{"credslots-other": true, "credslots-test": true})
	assert.False(t, ok)
	assert.Equal(t, []string{busyFor(name, cmd)}, ProcessGuard(name)())

	_ = cmd.Wait()
	_, ok = clilock.ProcessName(pid, map[string]bool{name: true})
	assert.False(t, ok, "gone once reaped")
}

func TestProcessGuardDeletedExecutable(t *testing.T) {
	const name = "credslots-test-deleted"
	cmd := startNamed(t, name)
	require.NoError(t, os.Remove(cmd.Path))
	assert.Equal(t, []string{busyFor(name, cmd)}, ProcessGuard(name)(), "an upgraded (deleted) binary still runs")
}

func TestProcessGuardDefersSwitch(t *testing.T) {
	const name = "credslots-test-proc"
	cmd := startNamed(t, name)
	f := newFixture(t, WithLockGuard(ProcessGuard(name)))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "alice")

	res, err := f.m.SwitchTo("bob", "rotate")
	require.ErrorIs(t, err, ErrDeferred)
	assert.False(t, res.OK)
	assert.Equal(t, []string{busyFor(name, cmd)}, res.DeferredLocks)
	assert.Equal(t, "deferred: active lock(s) "+busyFor(name, cmd)+"; would switch to bob (rotate)", res.Reason)
	assert.Equal(t, ".credentials.json.alice", f.readlink(t))
	assert.Empty(t, journalBytes(t, f.m), "a deferred switch is not journaled")

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	res, err = f.m.SwitchTo("bob", "rotate")
	require.NoError(t, err)
	assert.True(t, res.OK)
	assert.Equal(t, ".credentials.json.bob", f.readlink(t))
}
