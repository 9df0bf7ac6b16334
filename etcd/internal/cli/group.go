package cli

// The command runs in a process group of its own, so that what it starts
// (the native CLI an npm launcher spawns, a shell wrapper's children) is
// stopped with it: a login must not stay live in a grandchild after its
// lease ends. A descendant that leaves the group (setsid) escapes it.

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// groupAttr is the command's SysProcAttr: killed with this process
// (Pdeathsig), in a group of its own and, when this process is the
// terminal's foreground job, in the terminal's foreground, so that an
// interactive CLI can read it. restore gives the terminal back once the
// command has exited.
func groupAttr() (attr *syscall.SysProcAttr, restore func()) {
	attr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	restore = func() {}
	fd := int(os.Stdin.Fd())
	if fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err == nil && fg == unix.Getpgrp() {
		attr.Foreground, attr.Ctty = true, fd
		restore = func() {
			// Back in the foreground: as a background job asking for it,
			// this process would be stopped by SIGTTOU.
			signal.Ignore(syscall.SIGTTOU)
			defer signal.Reset(syscall.SIGTTOU)
			_ = unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, unix.Getpgrp())
		}
	}
	return attr, restore
}

// signalGroup sends sig to the command's process group (its leader's pid).
func signalGroup(pgid int, sig syscall.Signal) {
	_ = unix.Kill(-pgid, sig)
}

// groupGrace is how long what a command left in its group is given to
// exit on SIGTERM before it is killed.
const groupGrace = 5 * time.Second

// stopGroup ends what is left of the command's process group once its
// leader has exited: SIGTERM, then SIGKILL after grace at the latest. It
// reports whether anything was left.
func stopGroup(pgid int, grace time.Duration) bool {
	if unix.Kill(-pgid, syscall.SIGTERM) != nil {
		return false // nothing left (ESRCH)
	}
	for end := time.Now().Add(grace); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if unix.Kill(-pgid, 0) != nil {
			return true
		}
	}
	signalGroup(pgid, syscall.SIGKILL)
	return true
}
