//go:build !unix

package disk

import (
	"io/fs"
	"os"
)

// AppendRecord appends data to the regular file name with one write and
// returns the file's size before that write, fsynced when durable; a file
// that does not end with a newline gets one first.
func AppendRecord(name string, data []byte, durable, create bool) (int64, error) {
	flags := os.O_RDWR | os.O_APPEND
	if create {
		flags |= os.O_CREATE
	}
	if fi, err := os.Lstat(name); err == nil && !fi.Mode().IsRegular() {
		return 0, &fs.PathError{Op: "append", Path: name, Err: ErrNotRegular}
	}
	f, err := os.OpenFile(name, flags, 0o600)
	if err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return 0, err
	}
	size := fi.Size()
	if size > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, size-1); err == nil && last[0] != '\n' {
			data = append([]byte{'\n'}, data...)
		}
	}
	_, werr := f.Write(data)
	if werr == nil && durable {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return size, werr
}

// OpenRecord is AppendRecord that keeps the file open for the records that
// follow (see the unix version for when that is right).
func OpenRecord(name string, data []byte, durable, create bool) (int64, RecordFile, error) {
	size, err := AppendRecord(name, data, durable, create)
	if err != nil {
		return size, nil, err
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return size, nil, err
	}
	return size, recordFile{f}, nil
}

type recordFile struct{ f *os.File }

func (r recordFile) Append(data []byte, durable bool) error {
	if _, err := r.f.Write(data); err != nil {
		return err
	}
	if durable {
		return r.f.Sync()
	}
	return nil
}

func (r recordFile) Close() error { return r.f.Close() }
