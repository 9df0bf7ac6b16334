package credslots

// This file replaces the live path by a symlink with a compare-and-swap
// (internal/swap), so that a concurrent writer's newer file is never
// destroyed, and maps that package's errors onto the package's sentinels.

import (
	"errors"

	"github.com/gptme/credslots/internal/disk"
	"github.com/gptme/credslots/internal/swap"
)

// liveChangedError is an error met after the live path already changed: the
// symlink is in place, but the directory sync failed or the entry taken out
// could not be put back. The change must be journaled as done.
type liveChangedError struct{ err error }

func (e *liveChangedError) Error() string {
	return e.err.Error() + " (the live path was changed)"
}

func (e *liveChangedError) Unwrap() error { return e.err }

// sentinelError is an error of an internal package that also wraps the
// root sentinel its own sentinel stands for; its text is the original's.
type sentinelError struct {
	err      error
	sentinel error
}

func (e *sentinelError) Error() string   { return e.err.Error() }
func (e *sentinelError) Unwrap() []error { return []error{e.err, e.sentinel} }

// liftSwapErr maps an error of internal/swap: swap.ErrChanged also wraps
// [ErrLiveChanged], and one met after the live path changed becomes a
// liveChangedError.
func liftSwapErr(err error) error {
	if err == nil {
		return nil
	}
	var after *swap.AfterChange
	if errors.As(err, &after) {
		return &liveChangedError{liftSwapErr(after.Err)}
	}
	if errors.Is(err, swap.ErrChanged) {
		return &sentinelError{err: err, sentinel: ErrLiveChanged}
	}
	return err
}

// swapInSymlink makes path a symlink to target, atomically, replacing a
// regular file only while it still holds want's content (see swap.Symlink);
// otherwise path is left holding that newer entry and the error wraps
// [ErrLiveChanged].
func swapInSymlink(fsys disk.FS, path, target string, want entry, rescue func(string)) error {
	return liftSwapErr(swap.Symlink(fsys, path, target, want, rescue))
}
