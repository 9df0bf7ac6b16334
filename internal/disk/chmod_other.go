//go:build !unix

package disk

import (
	"io/fs"
	"os"
)

// ChmodNoFollow is os.Chmod where there are no Unix symlink semantics to
// guard against.
func ChmodNoFollow(name string, mode fs.FileMode) error { return os.Chmod(name, mode) }
