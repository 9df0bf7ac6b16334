//go:build !unix

package credslots

import (
	"io"
	"io/fs"
	"os"
)

// readRegular reads the regular file at name, refusing anything else as "not
// a regular file" and a file over maxFileSize with ErrTooLarge.
func readRegular(name string) ([]byte, error) {
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
		return nil, &fs.PathError{Op: "read", Path: name, Err: errNotRegular}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err == nil && len(data) > maxFileSize {
		return nil, tooLarge(name)
	}
	return data, err
}
