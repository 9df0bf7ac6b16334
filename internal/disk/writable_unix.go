//go:build unix

package disk

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// WritableDir reports why this process could not create a file in dir:
// access(2) with W_OK and X_OK, which answers for the real user, as the
// command runs (root passes, except on a read-only file system). A dir that
// does not exist is no problem here: the change creates or reports it.
func WritableDir(dir string) error {
	err := unix.Access(dir, unix.W_OK|unix.X_OK)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
