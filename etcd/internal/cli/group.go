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
	children := map[int][]int{}
	running := map[int]bool{}
	eachProc(func(pid int, state string, ppid, _ int) {
		children[ppid] = append(children[ppid], pid)
		running[pid] = alive(state)
	})
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
// has exited, but for the guard's subtree (see stopWithin). It reports
// whether anything was left.
func stopDescendants(guard int, grace time.Duration) bool {
	return stopWithin(grace, func() bool { return len(descendants(guard)) > 0 }, func(sig syscall.Signal) {
		for _, pid := range descendants(guard) {
			_ = unix.Kill(pid, sig)
		}
	})
}

// stopWithin stops what runs reports running: signal(SIGTERM), then, after
// grace at the latest, signal(SIGKILL) until nothing runs (a few tries, for
// a process forked meanwhile). It reports whether anything ran.
func stopWithin(grace time.Duration, runs func() bool, signal func(syscall.Signal)) bool {
	if !runs() {
		return false
	}
	signal(syscall.SIGTERM)
	for end := time.Now().Add(grace); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if !runs() {
			return true
		}
	}
	for try := 0; try < 10 && runs(); try++ {
		signal(syscall.SIGKILL)
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// eachProc calls f with each process's pid, state, parent and process
// group, by /proc.
func eachProc(f func(pid int, state string, ppid, pgrp int)) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if state, ppid, pgrp, ok := procStat(pid); ok {
			f(pid, state, ppid, pgrp)
		}
	}
}

// alive reports whether a /proc state is a running process's: a zombie
// (an unreaped one, such as the command's leader) or a dead one is not.
func alive(state string) bool { return state != "Z" && state != "X" }

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
// leader has exited (and before it is reaped; see stopWithin). It reports
// whether anything was left.
func stopGroup(pgid int, grace time.Duration) bool {
	return stopWithin(grace, func() bool { return groupRuns(pgid) }, func(sig syscall.Signal) { signalGroup(pgid, sig) })
}

// groupRuns reports whether a process of the group pgid still runs (see
// alive), by /proc.
func groupRuns(pgid int) bool {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return unix.Kill(-pgid, 0) == nil // no /proc: the leader counts
	}
	runs := false
	eachProc(func(_ int, state string, _, pgrp int) {
		runs = runs || pgrp == pgid && alive(state)
	})
	return runs
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
