//go:build !unix

package disk

import "io/fs"

// RunningAsRoot is false where files have no Unix owner.
func RunningAsRoot() bool { return false }

// OwnerOf is unknown where files have no Unix owner.
func OwnerOf(fs.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }
