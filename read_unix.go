//go:build unix

package credslots

import (
	"errors"
	"io/fs"
	"syscall"
)

// readRegularMode is readRegularMax that also returns the file's permission
// bits, from the same fstat.
func readRegularMode(name string, limit int64) ([]byte, fs.FileMode, error) {
	fd, err := retryEINTR(func() (int, error) {
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
		return nil, 0, &fs.PathError{Op: "read", Path: name, Err: errNotRegular}
	}
	perm := fs.FileMode(st.Mode & 0o777)
	if st.Size > limit {
		return nil, 0, tooLarge(name, limit)
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
				return nil, 0, tooLarge(name, limit)
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := retryEINTR(func() (int, error) { return syscall.Read(fd, buf[len(buf):cap(buf)]) })
		if err != nil {
			return nil, 0, &fs.PathError{Op: "read", Path: name, Err: err}
		}
		if n == 0 {
			return buf, perm, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// retryEINTR runs a system call again while a signal interrupts it.
func retryEINTR(call func() (int, error)) (int, error) {
	for {
		n, err := call()
		if !errors.Is(err, syscall.EINTR) {
			return n, err
		}
	}
}

// readRegularTail reads the last limit bytes of the regular file at name
// (all of it when smaller), with the same refusals as readRegularMode: the
// bounded read of a file that may grow past the bound, such as the journal.
func readRegularTail(name string, limit int64) ([]byte, error) {
	fd, err := retryEINTR(func() (int, error) {
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
		return nil, &fs.PathError{Op: "read", Path: name, Err: errNotRegular}
	}
	off := max(st.Size-limit, 0)
	buf := make([]byte, st.Size-off)
	n := 0
	for n < len(buf) {
		k, err := retryEINTR(func() (int, error) { return syscall.Pread(fd, buf[n:], off+int64(n)) })
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
