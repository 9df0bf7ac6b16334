//go:build unix

package clilock

import (
	"errors"
	"syscall"
)

// ProcessExists reports whether a process with this PID exists. A process
// that exists but belongs to another user still counts.
func ProcessExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
