//go:build windows

package clilock

import (
	"errors"

	"golang.org/x/sys/windows"
)

// ProcessExists reports whether a process with this PID exists.
func ProcessExists(pid int) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return errors.Is(err, windows.ERROR_ACCESS_DENIED)
	}
	_ = windows.CloseHandle(h)
	return true
}
