package clilock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gptme/credslots/internal/disk"
)

var (
	// ErrTimeout is wrapped by the error of a lock still held when the
	// deadline passed.
	ErrTimeout = errors.New("lock timeout")
	// ErrLost is wrapped by the error of a held lock another process took
	// over.
	ErrLost = errors.New("lock lost")
)

// pollInterval bounds the wait between attempts to take a busy lock.
const pollInterval = 25 * time.Millisecond

// Acquire retries try until it succeeds, fails, the deadline passes, or
// ctx ends (an error wrapping ctx.Err()). A timeout wraps ErrTimeout, names
// the lock (name, then path: joined only for an error), says why it is
// still held (held, when given) and how long was waited in all, since
// start.
func Acquire(ctx context.Context, name, path string, start, deadline time.Time, held func() string, try func() (bool, error)) error {
	if err := acquire(ctx, start, deadline, held, try); err != nil {
		return err(name + " " + path)
	}
	return nil
}

// acquire is Acquire whose error is built only once it is known to be one.
func acquire(ctx context.Context, start, deadline time.Time, held func() string, try func() (bool, error)) func(what string) error {
	wait := time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return func(what string) error { return fmt.Errorf("credslots: gave up waiting for %s: %w", what, err) }
		}
		ok, err := try()
		if err != nil {
			return func(what string) error { return fmt.Errorf("credslots: take %s: %w", what, err) }
		}
		if ok {
			return nil
		}
		if !time.Now().Before(deadline) {
			why := ""
			if held != nil {
				why = held()
			}
			if why != "" {
				why = "; " + why
			}
			waited := time.Since(start).Round(time.Millisecond)
			return func(what string) error {
				return fmt.Errorf("credslots: %s still held after waiting %s in all%s (raise --lock-timeout or WithLockTimeout to wait longer): %w",
					what, waited, why, ErrTimeout)
			}
		}
		pause := time.NewTimer(min(wait, time.Until(deadline)+time.Millisecond))
		select {
		case <-ctx.Done():
			pause.Stop()
			err := ctx.Err()
			return func(what string) error { return fmt.Errorf("credslots: gave up waiting for %s: %w", what, err) }
		case <-pause.C:
		}
		wait = min(2*wait, pollInterval)
	}
}

// LockFile takes an exclusive flock on path (created 0600 if missing, never
// through a symlink), waiting until deadline; what names it in errors. The
// returned function releases it.
func LockFile(ctx context.Context, fsys disk.FS, what, path string, start, deadline time.Time) (func(), error) {
	var unlock func() error
	err := Acquire(ctx, what, path, start, deadline, func() string {
		return "it is an flock, released when its holder ends its change or dies"
	}, func() (bool, error) {
		u, ok, err := fsys.TryLock(path)
		unlock = u
		return ok, err
	})
	if err != nil {
		return nil, err
	}
	return func() { _ = unlock() }, nil
}
