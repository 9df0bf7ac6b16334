package credslots

// This file owns every file-system operation the package performs: reads,
// hashes, atomic writes, the live-symlink swap, temp-file hygiene and the
// manager's lock. The safety checks in the other files call only these
// helpers, and these helpers reach the disk only through the disk.FS seam,
// which tests replace to inject faults at any single step.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gptme/credslots/internal/atomicfile"
	"github.com/gptme/credslots/internal/disk"
)

// tmpMarker is part of every temporary name the package creates. Such names
// start with a dot followed by the destination's base name, so they never
// match a slot, backup or sidecar name built from a template.
const (
	tmpMarker     = atomicfile.TempMarker
	tmpLinkMarker = ".credslots.tmp-link."
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
func hashBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// isTempName reports whether a base name is one of the package's temporaries.
func isTempName(base string) bool {
	return strings.Contains(base, tmpMarkerStem)
}

// createTempSymlink creates a symlink to target under a fresh temporary name
// beside dest and returns that name.
func createTempSymlink(fsys disk.FS, dest, target string) (string, error) {
	dir, base := filepath.Dir(dest), filepath.Base(dest)
	for i := 0; ; i++ {
		name := filepath.Join(dir, "."+base+tmpLinkMarker+strconv.FormatUint(rand.Uint64(), 36))
		err := fsys.Symlink(target, name)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) || i >= 100 {
			return "", fmt.Errorf("credslots: create temp symlink for %s: %w", dest, err)
		}
	}
}

// entry describes what a path held when it was inspected.
type entry struct {
	kind   entryKind
	perm   fs.FileMode // of a regular file
	mtime  time.Time   // of a regular file (zero for the other kinds)
	target string      // a symlink's target, as written
	data   []byte      // content, for kindFile (and the target's content for kindSymlink)
	hash   string      // sha256 of data; "" when there is no readable content
}

type entryKind int

const (
	kindMissing entryKind = iota
	kindSymlink
	kindBrokenSymlink
	kindFile
	kindOther
)

func (k entryKind) String() string {
	switch k {
	case kindMissing:
		return "missing"
	case kindSymlink:
		return "symlink"
	case kindBrokenSymlink:
		return "broken-symlink"
	case kindFile:
		return "file"
	default:
		return "other"
	}
}

// inspect reads path once (following a symlink) and classifies it: a read,
// a readlink, and for anything but a symlink an lstat. A read error other
// than "does not exist" is returned as is.
func inspect(fsys disk.FS, path string) (entry, error) {
	data, rerr := fsys.ReadFile(path)
	link, err := fsys.Readlink(path)
	switch {
	case err == nil:
		e := entry{kind: kindSymlink, target: link}
		switch {
		case rerr == nil:
			e.data, e.hash = data, hashBytes(data)
		case isMissing(rerr) || holdsNoFile(rerr):
			// A symlink holds no data: one whose target is missing, a
			// directory, or unreadable (not a regular file, too large,
			// not permitted) is a broken symlink, which a change may
			// replace.
			e.kind = kindBrokenSymlink
		default:
			return e, rerr
		}
		return e, nil
	case errors.Is(err, fs.ErrNotExist):
		return entry{kind: kindMissing}, nil
	}
	fi, lerr := fsys.Lstat(path)
	if lerr != nil {
		if errors.Is(lerr, fs.ErrNotExist) {
			return entry{kind: kindMissing}, nil
		}
		return entry{}, lerr
	}
	e, err := classify(fi, data, rerr, path)
	e.mtime, e.perm = fi.ModTime(), fi.Mode().Perm()
	return e, err
}

// classify builds the entry of a path that is not a symlink from what Lstat
// and ReadFile reported.
func classify(fi fs.FileInfo, data []byte, rerr error, path string) (entry, error) {
	switch {
	case fi.Mode().IsRegular():
		if rerr != nil {
			return entry{kind: kindFile}, rerr
		}
		return entry{kind: kindFile, data: data, hash: hashBytes(data)}, nil
	case fi.Mode()&fs.ModeSymlink != 0:
		// It became a symlink between the readlink and the lstat.
		return entry{kind: kindOther}, fmt.Errorf("credslots: %s changed while it was read: %w", path, ErrLiveChanged)
	default:
		if rerr == nil {
			rerr = fmt.Errorf("credslots: %s is not a regular file or symlink", path)
		}
		return entry{kind: kindOther}, rerr
	}
}

// holdsNoFile reports a read error that says the path leads to nothing
// readable as a credential: a directory, FIFO or device, a file over the
// reader's bound, or one the process may not read.
func holdsNoFile(err error) bool {
	return errors.Is(err, disk.ErrNotRegular) || errors.Is(err, ErrTooLarge) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EISDIR)
}

// isSymlink reports whether path is a symlink (not followed).
func isSymlink(fsys disk.FS, path string) bool {
	fi, err := fsys.Lstat(path)
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}

// isMissing reports whether err means that nothing usable is at a path: it
// does not exist, a symlink on the way loops (ELOOP), or a component on the
// way is not a directory (ENOTDIR). The reference treats all three alike.
func isMissing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR)
}

// syncDirOf fsyncs the directory holding path.
func syncDirOf(fsys disk.FS, path string) error {
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("credslots: sync directory of %s: %w", path, err)
	}
	return nil
}
