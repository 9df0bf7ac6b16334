//go:build unix

package credslots

import (
	"errors"
	"os"
	"syscall"
)

// tryLock takes a non-blocking exclusive flock on name, creating it with mode
// 0600 if needed and never following a symlink. The lock is released when the
// returned function runs or the process dies.
func tryLock(name string) (func() error, bool, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, false, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, &os.PathError{Op: "flock", Path: name, Err: err}
	}
	return f.Close, true, nil
}

// processExists reports whether a process with this PID exists. A process
// that exists but belongs to another user still counts.
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
