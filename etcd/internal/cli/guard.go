package cli

// The guard is a second process that stops the command when the lessee
// cannot: a lessee paused (SIGSTOP) or starved past its deadline would
// otherwise leave the command running with a login the cluster is about
// to hand to another host. The lessee sends the guard, every tick, how
// long the command may still run; the guard, in a process group of its
// own, SIGKILLs the command (through a pidfd, so never a reused pid) and
// its process group when that time passes without a newer word, or when
// the lessee goes.

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// guardEnv marks a re-executed credslots-etcd as the guard.
const guardEnv = "CREDSLOTS_ETCD_GUARD"

// guardTick is how often the lessee renews the guard's deadline.
const guardTick = 50 * time.Millisecond

// guard is the lessee's end of a running guard.
type guard struct {
	w   *os.File
	cmd *exec.Cmd
}

// startGuard starts the guard for the process pid, which leads the
// process group pgid (0: it has none of its own). It returns nil, and the
// command runs without a guard, where pidfds are not supported.
func startGuard(pid, pgid int, stderr io.Writer) *guard {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "credslots-etcd: no guard:", err)
		return nil
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		fmt.Fprintln(stderr, "credslots-etcd: no guard:", err)
		return nil
	}
	pfd := os.NewFile(uintptr(pidfd), "pidfd")
	defer pfd.Close()
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(stderr, "credslots-etcd: no guard:", err)
		return nil
	}
	defer r.Close()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), guardEnv+"="+strconv.Itoa(pgid))
	cmd.ExtraFiles = []*os.File{r, pfd} // fds 3 and 4
	cmd.Stderr = stderr
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = w.Close()
		fmt.Fprintln(stderr, "credslots-etcd: no guard:", err)
		return nil
	}
	return &guard{w: w, cmd: cmd}
}

// allow tells the guard the command may run for d more.
func (g *guard) allow(d time.Duration) {
	if g == nil {
		return
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(max(d, 0)))
	_, _ = g.w.Write(b[:])
}

// pid is the guard's process id (0 for none).
func (g *guard) pid() int {
	if g == nil {
		return 0
	}
	return g.cmd.Process.Pid
}

// stop ends the guard once the command has exited.
func (g *guard) stop() {
	if g == nil {
		return
	}
	_ = g.w.Close()
	_ = g.cmd.Wait()
}

// guardMain runs the guard: fd 3 is the lessee's pipe, fd 4 the command's
// pidfd, and guardEnv the command's process group ("0": none of its own).
func guardMain() int {
	in := os.NewFile(3, "lessee")
	pidfd := 4
	pgid, _ := strconv.Atoi(os.Getenv(guardEnv))
	kill := func() {
		_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		if pgid > 1 {
			signalGroup(pgid, unix.SIGKILL) // what it started, in its group
		}
	}
	words := make(chan time.Duration)
	go func() {
		defer close(words)
		var b [8]byte
		for {
			if _, err := io.ReadFull(in, b[:]); err != nil {
				return
			}
			words <- time.Duration(binary.LittleEndian.Uint64(b[:]))
		}
	}()
	deadline := time.NewTimer(time.Hour)
	deadline.Stop()
	for {
		select {
		case d, ok := <-words:
			if !ok {
				// The lessee is gone (or done, and so is the command).
				kill()
				return 0
			}
			deadline.Reset(d)
		case <-deadline.C:
			kill()
			fmt.Fprintln(os.Stderr, "credslots-etcd: the lessee did not renew the command's time: killed it")
			return 0
		}
	}
}
