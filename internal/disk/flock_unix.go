//go:build unix

package disk

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// TryLock takes a non-blocking exclusive flock on name, creating it with mode
// 0600 (whatever the umask) if needed and never following a symlink. A file
// that exists keeps its mode: it may be a CLI's. The lock is released when
// the returned function runs or the process dies.
func TryLock(name string) (func() error, bool, error) {
	// Raw descriptors: os.OpenFile would add four fcntl calls and an epoll
	// registration to every change, for a file that is never read.
	const flags = unix.O_RDWR | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := openRetry(name, flags, 0)
	if err == unix.ENOENT {
		fd, err = openRetry(name, flags|unix.O_CREAT|unix.O_EXCL, 0o600)
		if err == nil {
			if err = unix.Fchmod(fd, 0o600); err != nil {
				_ = unix.Close(fd)
			}
		} else if err == unix.EEXIST {
			fd, err = openRetry(name, flags, 0) // created meanwhile
		}
	}
	if err != nil {
		return nil, false, &os.PathError{Op: "open", Path: name, Err: err}
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		_ = unix.Close(fd)
		if err == unix.EWOULDBLOCK {
			return nil, false, nil
		}
		return nil, false, &os.PathError{Op: "flock", Path: name, Err: err}
	}
	return func() error { return unix.Close(fd) }, true, nil
}

// openRetry is unix.Open retried on EINTR.
func openRetry(name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Open(name, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// LockOpen is TryLock returning the locked file itself, which a child
// process may inherit (a lease's lock): the flock lasts while any process
// keeps the file open. With create false, a missing file is an error
// wrapping fs.ErrNotExist. The file is opened for writing even for a
// probe: NFS (and CIFS) emulate flock with byte-range locks, whose
// exclusive kind needs it, and a FIFO at the name opened read-only would
// block until a writer came.
func LockOpen(name string, create bool) (*os.File, bool, error) {
	const flags = os.O_RDWR | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
	f, err := os.OpenFile(name, flags, 0)
	if create && errors.Is(err, fs.ErrNotExist) {
		f, err = os.OpenFile(name, flags|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			err = f.Chmod(0o600)
			if err != nil {
				_ = f.Close()
			}
		} else if errors.Is(err, fs.ErrExist) {
			f, err = os.OpenFile(name, flags, 0) // created meanwhile
		}
	}
	if err != nil {
		return nil, false, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, &os.PathError{Op: "flock", Path: name, Err: err}
	}
	return f, true, nil
}
