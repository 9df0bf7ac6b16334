package etcd_test

// run as the foreground job of a terminal: the command stays in run's
// process group, so that the terminal's job control works as without run.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// ptyOutput is what the terminal's other end has read.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *ptyOutput) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

// openPty opens a new pseudo-terminal: its master, its slave, and what is
// read from the master.
func openPty(t *testing.T) (master, slave *os.File, out *ptyOutput) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	require.NoError(t, unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	out = &ptyOutput{}
	go func() {
		b := make([]byte, 4096)
		for {
			k, err := m.Read(b)
			out.mu.Lock()
			out.buf.Write(b[:k])
			out.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { _ = m.Close(); _ = s.Close() })
	return m, s, out
}

// runOnPty starts `run -- sh -c script` as the foreground job of a new
// terminal (session leader, the pty its controlling terminal). With
// pipeStdin its stdin is a pipe, its stdout and stderr the terminal.
func runOnPty(t *testing.T, script string, pipeStdin bool) (*exec.Cmd, *os.File, *ptyOutput) {
	t.Helper()
	c := sharedCluster(t)
	globals := []string{"--endpoints", c.endpointList(), "--key-file", writeKey(t), "--prefix", testPrefix(t)}
	importAll(t, globals, "alice")
	m, s, out := openPty(t)
	args := append(append([]string{}, globals...), "run", "--sub", "alice", "--seat", filepath.Join(t.TempDir(), "seat"), "--", "sh", "-c", script)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = cliEnv()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if pipeStdin {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		t.Cleanup(func() { _ = w.Close(); _ = r.Close() })
		cmd.Stdin = r
		cmd.SysProcAttr.Ctty = 1
	}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	return cmd, m, out
}

// exitsWithin waits for cmd for at most d.
func exitsWithin(cmd *exec.Cmd, d time.Duration) (bool, error) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return true, err
	case <-time.After(d):
		return false, nil
	}
}

func TestAnInteractiveCommandReadsTheTerminal(t *testing.T) {
	cmd, m, out := runOnPty(t, `stty -echo; read x; stty echo; echo "got=$x"`, false)
	time.Sleep(2 * time.Second)
	_, _ = m.Write([]byte("hello\n"))
	exited, err := exitsWithin(cmd, 10*time.Second)
	require.True(t, exited, "run did not exit; terminal: %q", out.String())
	require.NoError(t, err, out.String())
	assert.Contains(t, out.String(), "got=hello")
}

// A full-screen CLI opens /dev/tty when its stdin is a pipe: in a group
// of its own it would be a background job, stopped by SIGTTOU.
func TestACommandWithAPipedStdinCanUseTheTerminal(t *testing.T) {
	cmd, _, out := runOnPty(t, `stty -echo </dev/tty && stty echo </dev/tty && echo tty-ok`, true)
	exited, err := exitsWithin(cmd, 10*time.Second)
	require.True(t, exited, "run did not exit (its command stopped by SIGTTOU?); terminal: %q", out.String())
	require.NoError(t, err, out.String())
	assert.Contains(t, out.String(), "tty-ok")
}

// In a terminal's foreground the command stays in run's process group,
// so that Ctrl-C and Ctrl-Z reach run's whole job as the shell expects;
// elsewhere it leads a group of its own.
func TestTheCommandIsInRunsGroupInATerminalsForeground(t *testing.T) {
	script := `echo "pgrp=$(cut -d' ' -f5 /proc/$$/stat) self=$$"`
	cmd, _, out := runOnPty(t, script, false)
	exited, err := exitsWithin(cmd, 10*time.Second)
	require.True(t, exited, "terminal: %q", out.String())
	require.NoError(t, err, out.String())
	assert.Contains(t, out.String(), fmt.Sprintf("pgrp=%d ", cmd.Process.Pid), "the command is in run's group")
}

func TestTheCommandLeadsAGroupOfItsOwnOutOfATerminalsForeground(t *testing.T) {
	script := `echo "pgrp=$(cut -d' ' -f5 /proc/$$/stat) self=$$"`
	c := sharedCluster(t)
	globals := []string{"--endpoints", c.endpointList(), "--key-file", writeKey(t), "--prefix", testPrefix(t)}
	importAll(t, globals, "alice")
	bg := exec.Command(os.Args[0], append(append([]string{}, globals...), "run", "--sub", "alice", "--seat", filepath.Join(t.TempDir(), "seat"), "--", "sh", "-c", script)...)
	bg.Env = cliEnv()
	bg.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // no terminal's foreground job
	got, err := bg.Output()
	require.NoError(t, err)
	var pgrp, self int
	_, err = fmt.Sscanf(strings.TrimSpace(string(got)), "pgrp=%d self=%d", &pgrp, &self)
	require.NoError(t, err, string(got))
	assert.Equal(t, self, pgrp, "the command leads a group of its own")
}
