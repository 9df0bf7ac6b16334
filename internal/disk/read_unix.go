//go:build unix

package disk

import (
	"errors"
	"io/fs"
	"syscall"
)

// readFlags open a file for reading without ever blocking on it: a FIFO
// opened O_NONBLOCK returns at once, whether or not a writer is there.
const readFlags = syscall.O_RDONLY | syscall.O_NONBLOCK | syscall.O_CLOEXEC

// ReadRegularMode is ReadRegularMax that also returns the file's permission
// bits, from the same fstat.
func ReadRegularMode(name string, limit int64) ([]byte, fs.FileMode, error) {
	return readRegular(name, nil, limit)
}

// ReadRegularInto is ReadRegularMax reading into buf (from its start) when
// the file fits in its capacity: the data returned is then buf's memory,
// and a caller that reuses one buffer reads without allocating. A larger
// file gets a buffer of its own.
func ReadRegularInto(name string, buf []byte, limit int64) ([]byte, error) {
	data, _, err := readRegular(name, buf, limit)
	return data, err
}

// readRegular makes the reader's system calls: open (non-blocking), fstat
// (the type and the size: a FIFO, socket, device or directory is refused
// before anything is read from it, a file over limit before it is read),
// read until the size fstat reported (or the end, for a file that reports
// no size, as in /proc), and close. The fstat is what a read to the end
// would cost instead, measured side by side (BenchmarkReader), and it is
// the only proof that the file is a regular one.
func readRegular(name string, buf []byte, limit int64) ([]byte, fs.FileMode, error) {
	fd, err := RetryEINTR(func() (int, error) { return openRead(name) })
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
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	buf = buf[:0]
	if st.Size > 0 {
		buf = buf[:0:size] // the size fstat reported: no read past it
	}
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
	fd, err := RetryEINTR(func() (int, error) { return openRead(name) })
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
