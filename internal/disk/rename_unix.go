//go:build linux || darwin

package disk

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// renameErr maps the errors of an exchanging or no-replace rename onto the
// ones swapInSymlink branches on.
func renameErr(to string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOTSUP):
		// An old kernel, or a file system without the flag.
		return ErrExchangeUnsupported
	case errors.Is(err, unix.EEXIST):
		return &fs.PathError{Op: "rename", Path: to, Err: fs.ErrExist}
	case errors.Is(err, unix.ENOENT):
		return &fs.PathError{Op: "rename", Path: to, Err: fs.ErrNotExist}
	}
	return &fs.PathError{Op: "rename", Path: to, Err: err}
}
