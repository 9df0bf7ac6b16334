//go:build !unix

package disk

import (
	"io"
	"io/fs"
	"os"
)

// ReadRegularMode is ReadRegularMax that also returns the permission bits.
func ReadRegularMode(name string, limit int64) ([]byte, fs.FileMode, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, &fs.PathError{Op: "read", Path: name, Err: ErrNotRegular}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(data)) > limit {
		return nil, 0, TooLarge(name, limit)
	}
	return data, fi.Mode().Perm(), err
}

// ReadRegularInto is ReadRegularMax; buf is not used on this platform.
func ReadRegularInto(name string, _ []byte, limit int64) ([]byte, error) {
	data, _, err := ReadRegularMode(name, limit)
	return data, err
}

// ReadRegularTail reads the last limit bytes of the regular file at name.
func ReadRegularTail(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: ErrNotRegular}
	}
	off := max(fi.Size()-limit, 0)
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(f, limit))
}
