//go:build unix

package disk

import (
	"io/fs"
	"os"
	"syscall"
)

// RunningAsRoot reports whether files the package creates would be owned by
// root rather than by the creds dir's owner.
func RunningAsRoot() bool { return os.Geteuid() == 0 }

// OwnerOf returns the owner and group of fi.
func OwnerOf(fi fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
