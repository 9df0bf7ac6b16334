//go:build !linux

package disk

import (
	"os"
)

// StatLock is one lstat of name; the birth time is not read here (the owner
// records and leftovers that need it are proven on Linux only).
func StatLock(name string) (LockStat, error) {
	fi, err := os.Lstat(name)
	if err != nil {
		return LockStat{}, err
	}
	ino, _ := inodeOf(fi)
	return LockStat{Mode: fi.Mode().Type(), Ino: ino, Mtime: fi.ModTime()}, nil
}
