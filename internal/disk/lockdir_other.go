//go:build !linux

package disk

// StatLock is one lstat of name (see lstatLock).
func StatLock(name string) (LockStat, error) { return lstatLock(name) }
