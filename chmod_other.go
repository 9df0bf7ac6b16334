//go:build !unix

package credslots

import (
	"io/fs"
	"os"
)

// chmodNoFollow is os.Chmod where there are no Unix symlink semantics to
// guard against.
func chmodNoFollow(name string, mode fs.FileMode) error { return os.Chmod(name, mode) }
