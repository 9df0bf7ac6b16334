//go:build unix && !linux

package disk

import "syscall"

// openRead opens name for reading with readFlags.
func openRead(name string) (int, error) { return syscall.Open(name, readFlags, 0) }
