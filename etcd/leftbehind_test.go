package etcd_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// run in a terminal's foreground, its command leaving a process running
// (a launcher's native CLI; here a sleep): once run has exited and released
// the lease, nothing that may hold the login may still run. pipes: run's
// standard files are pipes, the terminal only its controlling one (an agent
// harness started in a terminal spawning run).
func TestWhatTheCommandLeavesIsStoppedInATerminalsForegroundToo(t *testing.T) {
	for _, pipes := range []bool{false, true} {
		t.Run("pipes="+strconv.FormatBool(pipes), func(t *testing.T) {
			c := sharedCluster(t)
			globals := []string{"--endpoints", c.endpointList(), "--key-file", writeKey(t), "--prefix", testPrefix(t)}
			importAll(t, globals, "alice")
			_, s, out := openPty(t)
			pidFile := filepath.Join(t.TempDir(), "pid")
			script := `sleep 300 & echo $! >` + pidFile + `; exit 0`
			args := append(append([]string{}, globals...), "run", "--sub", "alice", "--seat", filepath.Join(t.TempDir(), "seat"), "--", "sh", "-c", script)
			// A shell owns the terminal's session (as a login shell does,
			// so that run's exit hangs nobody up) and runs run in its own,
			// foreground, group.
			redirect := ""
			if pipes {
				redirect = " </dev/null >/dev/null 2>&1"
			}
			holder := exec.Command("sh", append([]string{"-c", `"$@"` + redirect + `; echo "rc=$?"; sleep 5`, "sh", os.Args[0]}, args...)...)
			holder.Env = cliEnv()
			holder.Stdin, holder.Stdout, holder.Stderr = s, s, s
			holder.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			require.NoError(t, holder.Start())
			t.Cleanup(func() { _ = syscall.Kill(-holder.Process.Pid, syscall.SIGKILL); _ = holder.Wait() })
			require.Eventually(t, func() bool { return strings.Contains(out.String(), "rc=") }, 15*time.Second, 20*time.Millisecond, "terminal: %q", out.String())
			require.Contains(t, out.String(), "rc=0")
			b, err := os.ReadFile(pidFile)
			require.NoError(t, err)
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			require.NoError(t, err)
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
			time.Sleep(200 * time.Millisecond)
			if running(pid) {
				t.Errorf("the command's child %d still runs after run released the lease; terminal: %q", pid, out.String())
			}
		})
	}
}

// running reports whether pid is a process that is not a zombie (one whose
// parent has not reaped it yet is dead all the same).
func running(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}
