//go:build unix

package credslots

import (
	"errors"
	"syscall"
)

// processExists reports whether a process with this PID exists. A process
// that exists but belongs to another user still counts.
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
