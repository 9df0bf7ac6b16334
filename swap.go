package credslots

// This file replaces the live path by a symlink with a compare-and-swap, so
// that a concurrent writer's newer file is never destroyed.

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/gptme/credslots/internal/disk"
)

// disposable reports whether e, which was just taken out of the live path,
// may be deleted: a symlink holds no data, and a regular file may go only if
// it holds exactly the content that was validated (wantHash).
func disposable(e entry, wantHash string) bool {
	switch e.kind {
	case kindSymlink, kindBrokenSymlink:
		return true
	case kindFile:
		return wantHash != "" && e.hash == wantHash
	}
	return false
}

// liveChangedError is an error met after the live path already changed: the
// symlink is in place, but the directory sync failed or the entry taken out
// could not be put back. The change must be journaled as done.
type liveChangedError struct{ err error }

func (e *liveChangedError) Error() string {
	return e.err.Error() + " (the live path was changed)"
}

func (e *liveChangedError) Unwrap() error { return e.err }

// afterChange marks err, met after the live path changed, as such.
func afterChange(err error) error {
	if err == nil {
		return nil
	}
	return &liveChangedError{err}
}

// swap is one replacement of the live path in progress.
type swap struct {
	fsys disk.FS
	path string // the live path
	want entry  // what the caller validated at path
	tmp  string // the temporary name beside path
	// ours is true while tmp holds the symlink this swap created, so that
	// removing it loses nothing.
	ours bool
	// rescue moves an entry that may be the only copy of a credential out
	// of a temporary name, where a sweep would delete it.
	rescue func(name string)
}

// swapInSymlink makes path a symlink to target, atomically: readers see the
// old entry or the new symlink, never nothing. want is what the caller
// validated at path; a regular file at path is replaced only while it still
// holds want's content. Otherwise path is left holding that newer entry and
// the error wraps [ErrLiveChanged].
//
// On Linux (renameat2 RENAME_EXCHANGE) and macOS on APFS (renamex_np
// RENAME_SWAP) the symlink is swapped in and what came out is inspected
// afterwards; a mismatch is swapped back. Where no atomic exchange exists the
// entry is re-checked immediately before a plain rename, which leaves a window
// of a few microseconds in which a concurrent writer's new file can be
// replaced.
func swapInSymlink(fsys disk.FS, path, target string, want entry, rescue func(string)) error {
	tmp, err := createTempSymlink(fsys, path, target)
	if err != nil {
		return err
	}
	s := &swap{fsys: fsys, path: path, want: want, tmp: tmp, ours: true, rescue: rescue}
	err = s.run()
	if err != nil && s.ours {
		_ = fsys.Remove(s.tmp)
	}
	return err
}

func (s *swap) run() error {
	xerr := s.fsys.Exchange(s.tmp, s.path)
	switch {
	case xerr == nil:
		s.ours = false
		return s.settleExchange()
	case errors.Is(xerr, fs.ErrNotExist):
		// Nothing at path (any more): place the symlink only if still nothing.
		return s.placeIfAbsent()
	case errors.Is(xerr, disk.ErrExchangeUnsupported):
		return s.checkThenRename(s.want)
	default:
		return fmt.Errorf("credslots: exchange %s: %w", s.path, xerr)
	}
}

// placeIfAbsent moves tmp to path only if path does not exist.
func (s *swap) placeIfAbsent() error {
	err := s.fsys.RenameNoReplace(s.tmp, s.path)
	if errors.Is(err, disk.ErrExchangeUnsupported) {
		return s.checkThenRename(entry{kind: kindMissing})
	}
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("credslots: %s appeared meanwhile: %w", s.path, ErrLiveChanged)
	}
	if err != nil {
		return fmt.Errorf("credslots: rename into %s: %w", s.path, err)
	}
	s.ours = false
	return afterChange(syncDirOf(s.fsys, s.path))
}

// checkThenRename is the portable fallback: re-inspect path and rename over
// it only if what is there may be discarded.
func (s *swap) checkThenRename(want entry) error {
	now, err := inspect(s.fsys, s.path)
	if err != nil {
		return fmt.Errorf("credslots: re-check %s: %w", s.path, err)
	}
	if now.kind != kindMissing && !disposable(now, want.hash) {
		return fmt.Errorf("credslots: %s changed since it was checked: %w", s.path, ErrLiveChanged)
	}
	if err := s.fsys.Rename(s.tmp, s.path); err != nil {
		return fmt.Errorf("credslots: rename into %s: %w", s.path, err)
	}
	s.ours = false
	return afterChange(syncDirOf(s.fsys, s.path))
}

// settleExchange runs after tmp and path were exchanged: tmp now holds what
// was at path. If that may be discarded and the directory is synced, it is
// removed; otherwise it is swapped back so the live path is as it was (or
// holds the newer entry a concurrent writer put there).
func (s *swap) settleExchange() error {
	out, err := inspect(s.fsys, s.tmp)
	switch {
	case err != nil:
		err = fmt.Errorf("credslots: inspect replaced %s: %w", s.path, err)
	case !disposable(out, s.want.hash):
		err = fmt.Errorf("credslots: %s changed since it was checked: %w", s.path, ErrLiveChanged)
	default:
		err = syncDirOf(s.fsys, s.path)
	}
	if err == nil {
		// Should the removal fail, the leftover is a verified duplicate or
		// a symlink, which a later sweep removes.
		_ = s.fsys.Remove(s.tmp)
		return nil
	}
	// Put the entry we took out back in place.
	if xerr := s.fsys.Exchange(s.tmp, s.path); xerr != nil {
		s.rescue(s.tmp)
		return afterChange(errors.Join(err, fmt.Errorf("credslots: swap back %s: %w", s.path, xerr)))
	}
	s.ours = true
	// If yet another writer replaced path between the two exchanges, tmp now
	// holds that entry rather than our symlink; keep it.
	if back, lerr := s.fsys.Lstat(s.tmp); lerr == nil && back.Mode()&fs.ModeSymlink == 0 {
		s.ours = false
		s.rescue(s.tmp)
	}
	return err
}
