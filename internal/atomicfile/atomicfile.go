// Package atomicfile writes a file so that readers see its old content or
// its new content, never a missing, empty or partial file. It is the one
// atomic-write helper of credslots and its command.
//
// What it guarantees:
//   - WriteFile's new content is durable before it returns nil: the
//     temporary file is fsynced before the rename, the directory after it.
//   - What it writes is mode 0600 exactly, whatever the umask, and owned by
//     the Owner it is given (for root writing into a user's directory).
//   - On every error before the rename the temporary file is removed and
//     the destination is as it was; temporary names carry TempMarker, so a
//     sweep can tell them from anything else.
//   - Every call goes through the FS seam it is given, so a test can fail
//     any single step.
//
// What it never does: open the destination (a symlink there is replaced,
// not followed), write in place, log, or import anything of credslots.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// TempMarker is part of every temporary name WriteFile creates. Such names
// start with a dot followed by the destination's base name.
const TempMarker = ".credslots.tmp."

// File is the subset of *os.File that WriteFile needs.
type File interface {
	Name() string
	Write(p []byte) (int, error)
	Chmod(mode os.FileMode) error
	Chown(uid, gid int) error
	Sync() error
	Close() error
}

// FS is the file-system seam WriteFile works through, so that callers can
// inject faults at any single step. The credslots package's seam is the one
// implementation.
type FS interface {
	// CreateTemp creates a new file exclusively (O_EXCL) with mode 0600.
	CreateTemp(dir, pattern string) (File, error)
	Rename(from, to string) error
	Remove(name string) error
	SyncDir(dir string) error
}

// TempPattern is the os.CreateTemp pattern for a temporary sibling of dest.
func TempPattern(dest string) string {
	return "." + filepath.Base(dest) + TempMarker + "*"
}

// Owner is the owner and group to give a written file.
type Owner struct{ UID, GID int }

// WriteFile replaces dest with data: a temporary file is created
// exclusively beside dest, made 0600 whatever the umask (and given owner,
// when not nil), written, fsynced, closed and renamed over dest,
// and the directory is fsynced. dest itself is never opened, so a symlink at
// dest is replaced, not followed. On any error the temporary file is removed
// and dest is unchanged, except when only the final directory sync failed:
// then dest holds data but may not survive a crash, and the error says so.
func WriteFile(fsys FS, dest string, data []byte, owner *Owner) (err error) {
	f, err := fsys.CreateTemp(filepath.Dir(dest), TempPattern(dest))
	if err != nil {
		return fmt.Errorf("credslots: create temp file for %s: %w", dest, err)
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				_ = f.Close()
			}
			_ = fsys.Remove(tmp)
		}
	}()
	// The file was created 0600 less the umask; make it 0600 exactly.
	if err = f.Chmod(0o600); err != nil {
		return fmt.Errorf("credslots: chmod %s: %w", tmp, err)
	}
	if owner != nil {
		if err = f.Chown(owner.UID, owner.GID); err != nil {
			return fmt.Errorf("credslots: chown %s: %w", tmp, err)
		}
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("credslots: write %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("credslots: sync %s: %w", tmp, err)
	}
	closed = true
	if err = f.Close(); err != nil {
		return fmt.Errorf("credslots: close %s: %w", tmp, err)
	}
	if err = fsys.Rename(tmp, dest); err != nil {
		return fmt.Errorf("credslots: rename into %s: %w", dest, err)
	}
	if serr := fsys.SyncDir(filepath.Dir(dest)); serr != nil {
		// The rename happened; the temporary name no longer exists.
		return fmt.Errorf("credslots: sync directory of %s (written, durability unknown): %w", dest, serr)
	}
	return nil
}
