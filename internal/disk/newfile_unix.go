//go:build unix

package disk

import (
	"os"

	"golang.org/x/sys/unix"
)

// CreateNew creates name exclusively (O_CREAT|O_EXCL, never through a
// symlink), mode 0600 whatever the umask, writes data with one write and
// closes it: open, fchmod, write, close, and nothing else. A name
// that exists fails with an error wrapping fs.ErrExist; a failed write
// removes what it created.
func CreateNew(name string, data []byte) error {
	var fd int
	var err error
	for {
		fd, err = unix.Open(name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	err = unix.Fchmod(fd, 0o600) // a umask may have taken bits away
	for len(data) > 0 && err == nil {
		var n int
		n, err = unix.Write(fd, data)
		if err == unix.EINTR {
			err = nil
			continue
		}
		if err == nil && n == 0 {
			err = unix.EIO
		}
		data = data[max(n, 0):]
	}
	cerr := unix.Close(fd)
	if err == nil {
		err = cerr
	}
	if err != nil {
		_ = unix.Unlink(name)
		return &os.PathError{Op: "write", Path: name, Err: err}
	}
	return nil
}

// Rmdir removes the empty directory name with one rmdir (os.Remove tries
// an unlink first).
func Rmdir(name string) error {
	for {
		err := unix.Rmdir(name)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "rmdir", Path: name, Err: err}
		}
		return nil
	}
}
