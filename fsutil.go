package credslots

// This file holds the package's file helpers: hashes, temp-file names, the
// inspection of an entry (internal/swap, in the package's terms) and the
// directory sync. The mechanisms under them live in internal/disk,
// internal/atomicfile and internal/swap, and reach the disk only through the
// disk.FS seam, which tests replace to inject faults at any single step.

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/gptme/credslots/internal/atomicfile"
	"github.com/gptme/credslots/internal/disk"
	"github.com/gptme/credslots/internal/swap"
)

// tmpMarker is part of every temporary name the package creates. Such names
// start with a dot followed by the destination's base name, so they never
// match a slot, backup or sidecar name built from a template.
const (
	tmpMarker     = atomicfile.TempMarker
	tmpLinkMarker = swap.TempLinkMarker
	// tmpMarkerStem is what both markers share; no sub name may contain it.
	tmpMarkerStem = ".credslots.tmp"
	// sweepAge is how old a leftover temp file must be before a mutation removes it.
	sweepAge = time.Minute
)

// prevSuffix is appended to a slot or live path to name its newest backup.
const prevSuffix = ".prev"

// lockSuffix ends the names of lock files and lock directories, the
// package's and the CLIs'.
const lockSuffix = ".lock"

// hashBytes returns the lowercase sha256 hex of b.
func hashBytes(b []byte) string { return swap.Hash(b) }

// isTempName reports whether a base name is one of the package's temporaries.
func isTempName(base string) bool {
	return strings.Contains(base, tmpMarkerStem)
}

// entry is what a path held when it was inspected.
type entry = swap.Entry

const (
	kindMissing       = swap.KindMissing
	kindSymlink       = swap.KindSymlink
	kindBrokenSymlink = swap.KindBrokenSymlink
	kindFile          = swap.KindFile
	kindOther         = swap.KindOther
)

// inspect reads path once (following a symlink) and classifies it (see
// swap.Inspect); a path that changed while it was read wraps
// [ErrLiveChanged].
func inspect(fsys disk.FS, path string) (entry, error) {
	e, err := swap.Inspect(fsys, path)
	return e, liftSwapErr(err)
}

// holdsNoFile reports a read error that says the path leads to nothing
// readable as a credential: a directory, FIFO or device, a file over the
// reader's bound, or one the process may not read.
func holdsNoFile(err error) bool { return swap.HoldsNoFile(err) }

// isSymlink reports whether path is a symlink (not followed).
func isSymlink(fsys disk.FS, path string) bool {
	fi, err := fsys.Lstat(path)
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}

// isMissing reports whether err means that nothing usable is at a path: it
// does not exist, a symlink on the way loops (ELOOP), or a component on the
// way is not a directory (ENOTDIR). The reference treats all three alike.
func isMissing(err error) bool { return swap.IsMissing(err) }

// syncDirOf fsyncs the directory holding path.
func syncDirOf(fsys disk.FS, path string) error {
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("credslots: sync directory of %s: %w", path, err)
	}
	return nil
}
