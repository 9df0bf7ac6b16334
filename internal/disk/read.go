package disk

import (
	"fmt"
)

// ReadRegular reads the regular file at name (following symlinks) without
// ever blocking on it and without reading more than MaxFileSize: a FIFO,
// socket or device is refused as "not a regular file" (it is opened
// non-blocking, so nothing waits for a writer), and a larger file returns an
// error wrapping ErrTooLarge. On Unix it makes exactly the system calls
// open, fstat, read and close; a file that reports no size (as in /proc) is
// read until its end.
func ReadRegular(name string) ([]byte, error) {
	data, _, err := ReadRegularMode(name, MaxFileSize)
	return data, err
}

// ReadRegularMax is readRegular with another bound.
func ReadRegularMax(name string, limit int64) ([]byte, error) {
	data, _, err := ReadRegularMode(name, limit)
	return data, err
}

// TooLarge is the error for a file over limit bytes.
func TooLarge(name string, limit int64) error {
	return fmt.Errorf("credslots: %s is larger than %d bytes: %w", name, limit, ErrTooLarge)
}
