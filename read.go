package credslots

import (
	"errors"
	"fmt"
)

// maxFileSize bounds every file the package reads: credentials, sidecars,
// the journal, backups and busy-signal files.
const maxFileSize = 1 << 20

// readRegular reads the regular file at name (following symlinks) without
// ever blocking on it and without reading more than maxFileSize: a FIFO,
// socket or device is refused as "not a regular file" (it is opened
// non-blocking, so nothing waits for a writer), and a larger file returns an
// error wrapping ErrTooLarge. On Unix it makes exactly the system calls
// open, fstat, read and close; a file that reports no size (as in /proc) is
// read until its end.
func readRegular(name string) ([]byte, error) {
	data, _, err := readRegularMode(name, maxFileSize)
	return data, err
}

// readRegularMax is readRegular with another bound.
func readRegularMax(name string, limit int64) ([]byte, error) {
	data, _, err := readRegularMode(name, limit)
	return data, err
}

// errNotRegular is the error a read of a FIFO, socket, device or directory
// returns.
var errNotRegular = errors.New("not a regular file")

// tooLarge is the error for a file over limit bytes.
func tooLarge(name string, limit int64) error {
	return fmt.Errorf("credslots: %s is larger than %d bytes: %w", name, limit, ErrTooLarge)
}
