//go:build windows

package disk

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// TryLock takes a non-blocking exclusive LockFileEx lock on name, creating it
// if needed. The lock is released when the returned function runs or the
// process dies.
func TryLock(name string) (func() error, bool, error) {
	f, ok, err := LockOpen(name, true)
	if !ok || err != nil {
		return nil, ok, err
	}
	return f.Close, true, nil
}

// LockOpen is TryLock returning the locked file itself. With create false,
// a missing file is an error wrapping fs.ErrNotExist.
func LockOpen(name string, create bool) (*os.File, bool, error) {
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
