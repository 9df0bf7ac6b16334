//go:build unix

package disk

import (
	"errors"
	"io/fs"
	"syscall"
)

// ReadRegularMode is ReadRegularMax that also returns the file's permission
// bits, from the same fstat.
func ReadRegularMode(name string, limit int64) ([]byte, fs.FileMode, error) {
	fd, err := RetryEINTR(func() (int, error) {
		return syscall.Open(name, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, 0, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, 0, &fs.PathError{Op: "fstat", Path: name, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, 0, &fs.PathError{Op: "read", Path: name, Err: ErrNotRegular}
	}
	perm := fs.FileMode(st.Mode & 0o777)
	if st.Size > limit {
		return nil, 0, TooLarge(name, limit)
	}
	size := int(st.Size)
	if size == 0 {
		size = 4096 // unknown: read in steps until the end
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if st.Size > 0 {
				return buf, perm, nil // the size fstat reported, in one read
			}
			if int64(len(buf)) > limit {
				return nil, 0, TooLarge(name, limit)
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := RetryEINTR(func() (int, error) { return syscall.Read(fd, buf[len(buf):cap(buf)]) })
		if err != nil {
			return nil, 0, &fs.PathError{Op: "read", Path: name, Err: err}
		}
		if n == 0 {
			return buf, perm, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// RetryEINTR runs a system call again while a signal interrupts it.
func RetryEINTR(call func() (int, error)) (int, error) {
	for {
		n, err := call()
		if !errors.Is(err, syscall.EINTR) {
			return n, err
		}
	}
}

// ReadRegularTail reads the last limit bytes of the regular file at name
// (all of it when smaller), with the same refusals as ReadRegularMode: the
// bounded read of a file that may grow past the bound, such as the journal.
func ReadRegularTail(name string, limit int64) ([]byte, error) {
	fd, err := RetryEINTR(func() (int, error) {
		return syscall.Open(name, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "fstat", Path: name, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, &fs.PathError{Op: "read", Path: name, Err: ErrNotRegular}
	}
	off := max(st.Size-limit, 0)
	buf := make([]byte, st.Size-off)
	n := 0
	for n < len(buf) {
		k, err := RetryEINTR(func() (int, error) { return syscall.Pread(fd, buf[n:], off+int64(n)) })
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: name, Err: err}
		}
		if k == 0 {
			break
		}
		n += k
	}
	return buf[:n], nil
}
