//go:build unix

package disk

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// AppendRecord appends data to the regular file name with one write and
// returns the file's size before that write: open (no symlink followed,
// never blocking on a FIFO), fstat, a pread of the last byte, the write,
// an fsync when durable, close. No lstat before and no os.File: the fstat
// of the open descriptor says what the file is and how large, and
// os.OpenFile would add fcntl and epoll calls.
func AppendRecord(name string, data []byte, durable, create bool) (int64, error) {
	fd, err := openRecord(name, create)
	if err != nil {
		return 0, err
	}
	size, werr := appendFD(fd, name, data, durable)
	if cerr := unix.Close(fd); werr == nil && cerr != nil {
		werr = &fs.PathError{Op: "close", Path: name, Err: cerr}
	}
	return size, werr
}

// OpenRecord is AppendRecord that keeps the descriptor open for records
// that follow: each costs one write (and an fsync when durable) through
// the returned RecordFile, with no open, fstat, pread of the last byte or
// close. That is right only while nobody else appends to the file (the
// caller's lock says so) and the file is not replaced (a rotation closes
// the RecordFile first): then the file still ends where the caller's last
// record, a whole line, ended.
func OpenRecord(name string, data []byte, durable, create bool) (int64, RecordFile, error) {
	fd, err := openRecord(name, create)
	if err != nil {
		return 0, nil, err
	}
	size, werr := appendFD(fd, name, data, durable)
	if werr != nil {
		_ = unix.Close(fd)
		return size, nil, werr
	}
	return size, &recordFD{fd: fd, name: name}, nil
}

// openRecord opens the record file name for appending: never through a
// symlink, never blocking on a FIFO, created 0600 when create is set.
func openRecord(name string, create bool) (int, error) {
	flags := unix.O_RDWR | unix.O_APPEND | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	if create {
		flags |= unix.O_CREAT
	}
	fd, err := RetryEINTR(func() (int, error) { return unix.Open(name, flags, 0o600) })
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EMLINK) || errors.Is(err, unix.EISDIR) {
			// A symlink at name (never followed: ELOOP, EMLINK on the
			// BSDs) or a directory.
			err = ErrNotRegular
		}
		return -1, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return fd, nil
}

// recordFD is an open record file (see OpenRecord).
type recordFD struct {
	fd   int
	name string
}

func (r *recordFD) Append(data []byte, durable bool) error {
	if r.fd < 0 {
		return &fs.PathError{Op: "write", Path: r.name, Err: fs.ErrClosed}
	}
	for len(data) > 0 {
		n, err := RetryEINTR(func() (int, error) { return unix.Write(r.fd, data) })
		if err != nil {
			return &fs.PathError{Op: "write", Path: r.name, Err: err}
		}
		data = data[n:]
	}
	if durable {
		if _, err := RetryEINTR(func() (int, error) { return 0, unix.Fsync(r.fd) }); err != nil {
			return &fs.PathError{Op: "fsync", Path: r.name, Err: err}
		}
	}
	return nil
}

func (r *recordFD) Close() error {
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	if err != nil {
		return &fs.PathError{Op: "close", Path: r.name, Err: err}
	}
	return nil
}

func appendFD(fd int, name string, data []byte, durable bool) (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, &fs.PathError{Op: "fstat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, &fs.PathError{Op: "append", Path: name, Err: ErrNotRegular}
	}
	if st.Mode&0o777 != 0o600 {
		_ = unix.Fchmod(fd, 0o600) // created under a umask that took bits away
	}
	if st.Size > 0 {
		// A line torn by a crash must not swallow the next one.
		var last [1]byte
		if n, err := unix.Pread(fd, last[:], st.Size-1); err == nil && n == 1 && last[0] != '\n' {
			data = append([]byte{'\n'}, data...)
		}
	}
	for len(data) > 0 {
		n, err := RetryEINTR(func() (int, error) { return unix.Write(fd, data) })
		if err != nil {
			return st.Size, &fs.PathError{Op: "write", Path: name, Err: err}
		}
		data = data[n:]
	}
	if durable {
		if _, err := RetryEINTR(func() (int, error) { return 0, unix.Fsync(fd) }); err != nil {
			return st.Size, &fs.PathError{Op: "fsync", Path: name, Err: err}
		}
	}
	return st.Size, nil
}
