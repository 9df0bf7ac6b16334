//go:build linux

package disk

import (
	"io/fs"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// noStatx is set once statx proved unavailable here: a kernel before 4.11,
// or a seccomp profile that refuses it. StatLock then lstats.
var noStatx atomic.Bool

// StatLock is one statx of name, not following a symlink; where statx is
// unavailable, one lstat without the birth time (lstatLock).
func StatLock(name string) (LockStat, error) {
	if noStatx.Load() {
		return lstatLock(name)
	}
	var st unix.Statx_t
	const mask = unix.STATX_TYPE | unix.STATX_MODE | unix.STATX_INO | unix.STATX_MTIME | unix.STATX_BTIME
	for {
		err := statx(unix.AT_FDCWD, name, unix.AT_SYMLINK_NOFOLLOW, mask, &st)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ENOSYS || err == unix.EPERM && statxRefused() {
			noStatx.Store(true)
			return lstatLock(name)
		}
		if err != nil {
			return LockStat{}, &os.PathError{Op: "statx", Path: name, Err: err}
		}
		break
	}
	s := LockStat{Mode: typeBits(uint32(st.Mode)), Ino: st.Ino, Mtime: time.Unix(st.Mtime.Sec, int64(st.Mtime.Nsec))}
	if st.Mask&unix.STATX_BTIME != 0 {
		s.BirthSec, s.BirthNsec, s.Birth = st.Btime.Sec, int64(st.Btime.Nsec), true
	}
	return s, nil
}

// typeBits maps a stat mode's file type to fs.FileMode type bits.
func typeBits(mode uint32) fs.FileMode {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return 0
}

// statx is the system call. The tests play a kernel or sandbox without it
// through statxHook; the real call is made directly, so that the caller's
// Statx_t stays on its stack (through a function value it would escape to
// the heap: an allocation in each of a switch's nine lock stats).
func statx(dirfd int, path string, flags, mask int, st *unix.Statx_t) error {
	if hook := statxHook; hook != nil {
		var out unix.Statx_t
		err := hook(dirfd, path, flags, mask, &out)
		*st = out
		return err
	}
	return unix.Statx(dirfd, path, flags, mask, st)
}

// statxHook, when not nil, is called instead of the system call (tests).
var statxHook func(dirfd int, path string, flags, mask int, st *unix.Statx_t) error

// statxRefused tells an EPERM of a sandbox that refuses statx itself (old
// Docker and libseccomp profiles) from one about the name: statx of the
// root directory, which anyone may stat, fails the same way only then.
func statxRefused() bool {
	var st unix.Statx_t
	return statx(unix.AT_FDCWD, "/", 0, unix.STATX_TYPE, &st) == unix.EPERM
}
