//go:build windows

package credslots

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// tryLock takes a non-blocking exclusive LockFileEx lock on name, creating it
// if needed. The lock is released when the returned function runs or the
// process dies.
func tryLock(name string) (func() error, bool, error) {
	f, ok, err := lockOpen(name, true)
	if !ok || err != nil {
		return nil, ok, err
	}
	return f.Close, true, nil
}

// lockOpen is tryLock returning the locked file itself. With create false,
// a missing file is an error wrapping fs.ErrNotExist.
func lockOpen(name string, create bool) (*os.File, bool, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(name, flags, 0o600)
	if err != nil {
		return nil, false, err
	}
	ol := new(windows.Overlapped)
	err = windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if err != nil {
		_ = f.Close()
		if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
			return nil, false, nil
		}
		return nil, false, &os.PathError{Op: "LockFileEx", Path: name, Err: err}
	}
	return f, true, nil
}

// processExists reports whether a process with this PID exists.
func processExists(pid int) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return errors.Is(err, windows.ERROR_ACCESS_DENIED)
	}
	_ = windows.CloseHandle(h)
	return true
}
