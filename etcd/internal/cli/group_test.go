package cli

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startGroup starts a shell leading a group of its own.
func startGroup(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	return cmd
}

// What a command leaves running in its group is stopped once it exits,
// its unreaped leader (a zombie) counting for nothing; a group with
// nothing left is not waited for.
func TestStopGroupStopsWhatTheCommandLeft(t *testing.T) {
	left := startGroup(t, `sleep 30 & exit 0`)
	waitExited(left.Process.Pid)
	require.True(t, groupRuns(left.Process.Pid), "the sleep still runs")
	start := time.Now()
	assert.True(t, stopGroup(left.Process.Pid, 5*time.Second))
	assert.Less(t, time.Since(start), 2*time.Second, "SIGTERM ended it, no wait for the grace")
	assert.False(t, groupRuns(left.Process.Pid))

	alone := startGroup(t, `exit 0`)
	waitExited(alone.Process.Pid)
	start = time.Now()
	assert.False(t, stopGroup(alone.Process.Pid, 5*time.Second), "only the zombie leader")
	assert.Less(t, time.Since(start), time.Second)

	stubborn := startGroup(t, `sh -c 'trap "" TERM; sleep 30' & exit 0`)
	waitExited(stubborn.Process.Pid)
	time.Sleep(100 * time.Millisecond) // the trap is set
	assert.True(t, stopGroup(stubborn.Process.Pid, 300*time.Millisecond))
	assert.Eventually(t, func() bool { return !groupRuns(stubborn.Process.Pid) }, 2*time.Second, 20*time.Millisecond, "SIGKILL after the grace")
}

// Run interactively, run is a child subreaper: what the command orphans
// is found below run and stopped, but for the guard's subtree.
func TestStopDescendantsStopsWhatTheCommandOrphaned(t *testing.T) {
	becomeSubreaper()
	guard := exec.Command("sleep", "30")
	require.NoError(t, guard.Start())
	t.Cleanup(func() { _ = guard.Process.Kill(); _ = guard.Wait() })
	cmd := exec.Command("sh", "-c", `sleep 30 & exit 0`)
	require.NoError(t, cmd.Start())
	waitExited(cmd.Process.Pid)
	left := descendants(guard.Process.Pid)
	require.Len(t, left, 1, "the orphaned sleep, not the guard nor the zombie command: %v", left)
	assert.True(t, stopDescendants(guard.Process.Pid, 2*time.Second))
	assert.Empty(t, descendants(guard.Process.Pid))
	assert.NoError(t, syscall.Kill(guard.Process.Pid, 0), "the guard is left alone")
	_ = cmd.Wait()
}
