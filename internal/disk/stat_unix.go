//go:build unix

package disk

import (
	"io/fs"
	"syscall"
)

// StatMode is os.Stat's mode (type and permission bits) with one stat and
// no FileInfo: the only allocation is the C string of name.
func StatMode(name string) (fs.FileMode, error) {
	var st syscall.Stat_t
	for {
		err := syscall.Stat(name, &st)
		if err == nil {
			break
		}
		if err != syscall.EINTR {
			return 0, &fs.PathError{Op: "stat", Path: name, Err: err}
		}
	}
	mode := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
	case syscall.S_IFDIR:
		mode |= fs.ModeDir
	case syscall.S_IFLNK:
		mode |= fs.ModeSymlink
	case syscall.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case syscall.S_IFSOCK:
		mode |= fs.ModeSocket
	case syscall.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFBLK:
		mode |= fs.ModeDevice
	default:
		mode |= fs.ModeIrregular
	}
	if st.Mode&syscall.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if st.Mode&syscall.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if st.Mode&syscall.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode, nil
}

// ReadlinkInto reads the target of the symlink name into buf and returns
// its length, with one readlink; ErrLinkTooLong when it fills buf.
func ReadlinkInto(name string, buf []byte) (int, error) {
	n, err := RetryEINTR(func() (int, error) { return syscall.Readlink(name, buf) })
	if err != nil {
		return 0, &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	if n >= len(buf) {
		return 0, &fs.PathError{Op: "readlink", Path: name, Err: ErrLinkTooLong}
	}
	return n, nil
}
