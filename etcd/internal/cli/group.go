package cli

// Unless run is the foreground job of its terminal, the command runs in a
// process group of its own, so that what it starts (the native CLI an npm
// launcher spawns, a shell wrapper's children) is stopped with it: a login
// must not stay live in a grandchild after its lease ends. In a terminal's
// foreground the command stays in run's group, where the terminal's job
// control (Ctrl-C, Ctrl-Z, a full-screen CLI reading /dev/tty) works as it
// does without run; there only the command itself is stopped. A descendant
// that leaves the group (setsid) escapes it either way.

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

// foregroundOfTerminal reports whether this process's group is the
// foreground job of its controlling terminal, whichever of its standard
// files is that terminal, if any.
func foregroundOfTerminal() bool {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return false // no controlling terminal
	}
	defer tty.Close()
	fg, err := unix.IoctlGetInt(int(tty.Fd()), unix.TIOCGPGRP)
	return err == nil && fg == unix.Getpgrp()
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
		if p.Name()[0] < '0' || p.Name()[0] > '9' {
			continue
		}
		data, err := os.ReadFile("/proc/" + p.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces and parens.
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) >= 3 && f[0] != "Z" && f[0] != "X" && f[2] == strconv.Itoa(pgid) {
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
