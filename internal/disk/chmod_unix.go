//go:build unix

package disk

import (
	"io/fs"
	"os"
	"syscall"
)

// ChmodNoFollow sets the permission bits of name through a descriptor
// opened without following a symlink, so that a symlink swapped in at name
// is refused rather than followed.
func ChmodNoFollow(name string, mode fs.FileMode) error {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	cerr := f.Chmod(mode)
	if err := f.Close(); cerr == nil {
		cerr = err
	}
	return cerr
}
