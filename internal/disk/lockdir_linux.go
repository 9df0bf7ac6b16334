//go:build linux

package disk

import (
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// StatLock is one statx of name, not following a symlink.
func StatLock(name string) (LockStat, error) {
	var st unix.Statx_t
	const mask = unix.STATX_TYPE | unix.STATX_MODE | unix.STATX_INO | unix.STATX_MTIME | unix.STATX_BTIME
	for {
		err := unix.Statx(unix.AT_FDCWD, name, unix.AT_SYMLINK_NOFOLLOW, mask, &st)
		if err == unix.EINTR {
			continue
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
