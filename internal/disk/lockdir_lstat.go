package disk

import (
	"os"
)

// lstatLock is StatLock by one lstat: without the birth time, which the
// owner records and leftovers that need it prove only where statx gives it.
// It is StatLock off Linux, and on a Linux kernel or sandbox without statx.
func lstatLock(name string) (LockStat, error) {
	fi, err := os.Lstat(name)
	if err != nil {
		return LockStat{}, err
	}
	ino, _ := inodeOf(fi)
	return LockStat{Mode: fi.Mode().Type(), Ino: ino, Mtime: fi.ModTime()}, nil
}
