package swap

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/gptme/credslots/internal/disk"
)

// AfterChange is an error met after the path already changed: the symlink
// is in place, but the directory sync failed or the entry taken out could
// not be put back. The caller must record the change as made.
type AfterChange struct{ Err error }

func (e *AfterChange) Error() string { return e.Err.Error() }
func (e *AfterChange) Unwrap() error { return e.Err }

// afterChange marks err, met after the path changed, as such.
func afterChange(err error) error {
	if err == nil {
		return nil
	}
	return &AfterChange{err}
}

// Disposable reports whether e, which was just taken out of a path, may be
// deleted: a symlink holds no data, and a regular file may go only if it
// holds exactly the content that was validated (wantHash).
func Disposable(e Entry, wantHash string) bool {
	switch e.Kind {
	case KindSymlink, KindBrokenSymlink:
		return true
	case KindFile:
		return wantHash != "" && e.Hash == wantHash
	}
	return false
}

// swap is one replacement of the path in progress.
type swap struct {
	fsys disk.FS
	path string // the path replaced
	want Entry  // what the caller validated at path
	tmp  string // the temporary name beside path
	// ours is true while tmp holds the symlink this swap created, so that
	// removing it loses nothing.
	ours bool
	// rescue moves an entry that may be the only copy of a credential out
	// of a temporary name, where a sweep would delete it.
	rescue func(name string)
}

// Symlink makes path a symlink to target, atomically: readers see the old
// entry or the new symlink, never nothing. want is what the caller
// validated at path; a regular file at path is replaced only while it
// still holds want's content. Otherwise path is left holding that newer
// entry and the error wraps [ErrChanged]. The directory is synced once the
// symlink is in place; rescue is called with a temporary name that holds an
// entry which may be the only copy of its data.
//
// On Linux (renameat2 RENAME_EXCHANGE) and macOS on APFS (renamex_np
// RENAME_SWAP) the symlink is swapped in and what came out is inspected
// afterwards; a mismatch is swapped back. Where no atomic exchange exists the
// entry is re-checked immediately before a plain rename, which leaves a window
// of a few microseconds in which a concurrent writer's new file can be
// replaced.
func Symlink(fsys disk.FS, path, target string, want Entry, rescue func(string)) error {
	tmp, err := CreateTempSymlink(fsys, path, target)
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
		return s.checkThenRename(Entry{Kind: KindMissing})
	}
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("credslots: %s appeared meanwhile: %w", s.path, ErrChanged)
	}
	if err != nil {
		return fmt.Errorf("credslots: rename into %s: %w", s.path, err)
	}
	s.ours = false
	return afterChange(syncDirOf(s.fsys, s.path))
}

// checkThenRename is the portable fallback: re-inspect path and rename over
// it only if what is there may be discarded.
func (s *swap) checkThenRename(want Entry) error {
	now, err := Inspect(s.fsys, s.path)
	if err != nil {
		return fmt.Errorf("credslots: re-check %s: %w", s.path, err)
	}
	if now.Kind != KindMissing && !Disposable(now, want.Hash) {
		return fmt.Errorf("credslots: %s changed since it was checked: %w", s.path, ErrChanged)
	}
	if err := s.fsys.Rename(s.tmp, s.path); err != nil {
		return fmt.Errorf("credslots: rename into %s: %w", s.path, err)
	}
	s.ours = false
	return afterChange(syncDirOf(s.fsys, s.path))
}

// takenOut classifies what the exchange took out of path, now at tmp. A
// symlink holds no data (its data lives in its target, which the exchange
// left untouched), and every symlink may be discarded: one readlink proves
// it is one. Anything else is read and compared in full.
func (s *swap) takenOut() (Entry, error) {
	if target, err := s.fsys.Readlink(s.tmp); err == nil {
		return Entry{Kind: KindSymlink, Target: target}, nil
	}
	return Inspect(s.fsys, s.tmp)
}

// settleExchange runs after tmp and path were exchanged: tmp now holds what
// was at path. If that may be discarded and the directory is synced, it is
// removed; otherwise it is swapped back so the path is as it was (or holds
// the newer entry a concurrent writer put there).
func (s *swap) settleExchange() error {
	out, err := s.takenOut()
	switch {
	case err != nil:
		err = fmt.Errorf("credslots: inspect replaced %s: %w", s.path, err)
	case !Disposable(out, s.want.Hash):
		err = fmt.Errorf("credslots: %s changed since it was checked: %w", s.path, ErrChanged)
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

// syncDirOf fsyncs the directory holding path.
func syncDirOf(fsys disk.FS, path string) error {
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("credslots: sync directory of %s: %w", path, err)
	}
	return nil
}
