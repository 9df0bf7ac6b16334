//go:build !unix

package disk

import (
	"io/fs"
	"os"
)

// StatMode is os.Stat's mode.
func StatMode(name string) (fs.FileMode, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return 0, err
	}
	return fi.Mode(), nil
}

// ReadlinkInto reads the target of the symlink name into buf and returns
// its length; ErrLinkTooLong when it fills buf.
func ReadlinkInto(name string, buf []byte) (int, error) {
	target, err := os.Readlink(name)
	if err != nil {
		return 0, err
	}
	if len(target) >= len(buf) {
		return 0, &fs.PathError{Op: "readlink", Path: name, Err: ErrLinkTooLong}
	}
	return copy(buf, target), nil
}
