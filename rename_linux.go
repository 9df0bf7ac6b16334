//go:build linux

package credslots

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// exchange atomically swaps a and b with renameat2(RENAME_EXCHANGE).
func exchange(a, b string) error {
	return renameat2(a, b, unix.RENAME_EXCHANGE)
}

// renameNoReplace renames from to to with renameat2(RENAME_NOREPLACE).
func renameNoReplace(from, to string) error {
	return renameat2(from, to, unix.RENAME_NOREPLACE)
}

func renameat2(from, to string, flags uint) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, flags)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EINVAL):
		// Old kernel, or a file system without renameat2 flag support.
		return errExchangeUnsupported
	case errors.Is(err, unix.EEXIST):
		return &fs.PathError{Op: "renameat2", Path: to, Err: fs.ErrExist}
	case errors.Is(err, unix.ENOENT):
		return &fs.PathError{Op: "renameat2", Path: to, Err: fs.ErrNotExist}
	}
	return &fs.PathError{Op: "renameat2", Path: to, Err: err}
}
