//go:build !unix

package credslots

import "io/fs"

// runningAsRoot is false where files have no Unix owner.
func runningAsRoot() bool { return false }

// ownerOf is unknown where files have no Unix owner.
func ownerOf(fs.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }
