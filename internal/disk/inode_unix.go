//go:build unix

package disk

import (
	"os"
	"syscall"
)

// inodeOf is a file's inode number.
func inodeOf(fi os.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Ino), true
}
