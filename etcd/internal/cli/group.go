package cli

// Unless run is the foreground job of the terminal one of its standard
// files is, the command runs in a process group of its own, so that what
// it starts (the native CLI an npm launcher spawns, a shell wrapper's
// children) is stopped with it: a login must not stay live in a grandchild
// after its lease ends. Run interactively, the command stays in run's
// group, where the terminal's job control (Ctrl-C, Ctrl-Z, a full-screen
// CLI reading /dev/tty) works as it does without run; there run is a child
// subreaper, and what the command leaves running is found by run's own
// descendants. A descendant that leaves the group (setsid) escapes the
// group's signals.

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// commandAttr is the command's SysProcAttr, killed with this process
// (Pdeathsig), and whether it gets a process group of its own.
func commandAttr() (attr *syscall.SysProcAttr, ownGroup bool) {
	attr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if foregroundOfTerminal() {
		return attr, false
	}
	attr.Setpgid = true
	return attr, true
}

// foregroundOfTerminal reports whether one of this process's standard
// files is its controlling terminal and this process's group is that
// terminal's foreground job: run by a person at it, not by a program
// started there with pipes.
func foregroundOfTerminal() bool {
	sid, err := unix.Getsid(0)
	if err != nil {
		return false
	}
	for fd := 0; fd <= 2; fd++ {
		// TIOCGSID answers only for the caller's controlling terminal.
		if s, err := unix.IoctlGetInt(fd, unix.TIOCGSID); err != nil || s != sid {
			continue
		}
		if fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err == nil && fg == unix.Getpgrp() {
			return true
		}
	}
	return false
}

// becomeSubreaper makes this process the child subreaper of what it
// starts: an orphaned descendant becomes its child, so that it can still
// be found (see stopDescendants).
func becomeSubreaper() {
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// descendants lists the running processes below this one, by /proc, but
// for the subtree of except (the guard): zombies do not count.
func descendants(except int) []int {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	running := map[int]bool{}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		state, ppid, _, ok := procStat(pid)
		if !ok {
			continue
		}
		children[ppid] = append(children[ppid], pid)
		running[pid] = state != "Z" && state != "X"
	}
	var out []int
	for queue := children[os.Getpid()]; len(queue) > 0; queue = queue[1:] {
		pid := queue[0]
		if pid == except {
			continue
		}
		if running[pid] {
			out = append(out, pid)
		}
		queue = append(queue, children[pid]...)
	}
	return out
}

// stopDescendants ends what is left below this process once the command
// has exited, but for the guard's subtree: SIGTERM, then SIGKILL after
// grace at the latest. It reports whether anything was left.
func stopDescendants(guard int, grace time.Duration) bool {
	left := descendants(guard)
	if len(left) == 0 {
		return false
	}
	for _, pid := range left {
		_ = unix.Kill(pid, syscall.SIGTERM)
	}
	for end := time.Now().Add(grace); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if left = descendants(guard); len(left) == 0 {
			return true
		}
	}
	for _, pid := range descendants(guard) {
		_ = unix.Kill(pid, syscall.SIGKILL)
	}
	return true
}

// procStat reads a process's state, parent and process group from /proc.
func procStat(pid int) (state string, ppid, pgrp int, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, 0, false // gone meanwhile
	}
	// pid (comm) state ppid pgrp ...: comm may hold spaces and parens.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return "", 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	return f[0], ppid, pgrp, err1 == nil && err2 == nil
}

// signalGroup sends sig to the process group pgid. Callers send it only
// while the group's leader is not yet reaped (see waitExited), so that the
// number names no other group.
func signalGroup(pgid int, sig syscall.Signal) {
	_ = unix.Kill(-pgid, sig)
}

// groupGrace is how long what a command left in its group is given to
// exit on SIGTERM before it is killed.
const groupGrace = 5 * time.Second

// stopGroup ends what is left of the command's process group once its
// leader has exited (and before it is reaped): SIGTERM, then SIGKILL after
// grace at the latest. It reports whether anything was left.
func stopGroup(pgid int, grace time.Duration) bool {
	if !groupRuns(pgid) {
		return false
	}
	signalGroup(pgid, syscall.SIGTERM)
	for end := time.Now().Add(grace); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if !groupRuns(pgid) {
			return true
		}
	}
	signalGroup(pgid, syscall.SIGKILL)
	return true
}

// groupRuns reports whether a process of the group pgid still runs: one
// that is not a zombie (the unreaped leader is one), by /proc.
func groupRuns(pgid int) bool {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return unix.Kill(-pgid, 0) == nil // no /proc: the leader counts
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if state, _, pgrp, ok := procStat(pid); ok && state != "Z" && state != "X" && pgrp == pgid {
			return true
		}
	}
	return false
}

// waitExited waits until the process pid has exited, without reaping it:
// while it is a zombie its pid, and so its group's number, stays taken.
func waitExited(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}
