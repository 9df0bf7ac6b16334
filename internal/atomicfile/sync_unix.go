//go:build unix

package atomicfile

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// SyncDir fsyncs a directory so that a rename inside it is durable: open
// (O_DIRECTORY), fsync, close, and no more; os.Open would add fcntl and
// epoll calls.
func SyncDir(dir string) error {
	fd, err := retryEINTR(func() (int, error) {
		return unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	_, serr := retryEINTR(func() (int, error) { return 0, unix.Fsync(fd) })
	cerr := unix.Close(fd)
	if serr != nil {
		return &fs.PathError{Op: "sync", Path: dir, Err: serr}
	}
	if cerr != nil {
		return &fs.PathError{Op: "close", Path: dir, Err: cerr}
	}
	return nil
}

func retryEINTR(call func() (int, error)) (int, error) {
	for {
		n, err := call()
		if !errors.Is(err, unix.EINTR) {
			return n, err
		}
	}
}
