package credslots

// This file owns every file-system operation the package performs: reads,
// hashes, atomic writes, the live-symlink swap, temp-file hygiene and the
// manager's lock. The safety checks in the other files call only these
// helpers, and these helpers reach the disk only through the fileSystem seam,
// which tests replace to inject faults at any single step.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gptme/credslots/internal/atomicfile"
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

// errExchangeUnsupported is returned by fileSystem.Exchange where the platform
// has no atomic exchange; callers fall back to check-then-rename.
var errExchangeUnsupported = errors.New("atomic exchange not supported")

// tempFile is the subset of *os.File the atomic writer needs.
type tempFile = atomicfile.File

// fileSystem is the seam between the package and the disk.
type fileSystem interface {
	ReadFile(name string) ([]byte, error)
	// ReadFileMode is ReadFile that also returns the file's permission bits.
	ReadFileMode(name string) ([]byte, fs.FileMode, error)
	// ReadFileTail reads at most the last limit bytes of a regular file.
	ReadFileTail(name string, limit int64) ([]byte, error)
	Lstat(name string) (fs.FileInfo, error)
	Stat(name string) (fs.FileInfo, error)
	Readlink(name string) (string, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	// CreateTemp creates a new file exclusively with mode 0600.
	CreateTemp(dir, pattern string) (tempFile, error)
	Symlink(target, name string) error
	Rename(from, to string) error
	// Exchange atomically swaps two existing names; errExchangeUnsupported
	// where the platform cannot.
	Exchange(a, b string) error
	// RenameNoReplace renames from to to, failing with fs.ErrExist if to
	// exists; errExchangeUnsupported where the platform cannot.
	RenameNoReplace(from, to string) error
	Remove(name string) error
	// RemoveAll is used only on the package's own temporary directories.
	RemoveAll(name string) error
	Mkdir(name string, perm fs.FileMode) error
	SyncDir(dir string) error
	// TryLock takes an exclusive advisory lock on name without waiting.
	// It reports false (and no error) when another holder has it.
	TryLock(name string) (unlock func() error, ok bool, err error)
	// Chtimes sets a file's access and modification times.
	Chtimes(name string, atime, mtime time.Time) error
	// Chmod sets a file's permission bits, never through a symlink.
	Chmod(name string, mode fs.FileMode) error
	// Append appends data to name with one write, creating it with mode
	// 0600 (never following a symlink), and fsyncs it when durable. When
	// the file does not end with a newline (a line torn by a crash), data
	// starts on a new line.
	Append(name string, data []byte, durable bool) error
	// EvalSymlinks returns name with every symlink resolved.
	EvalSymlinks(name string) (string, error)
	// Lchown sets the owner and group of name, not following a symlink.
	Lchown(name string, uid, gid int) error
}

// osFS is the real file system.
type osFS struct{}

func (osFS) ReadFile(name string) ([]byte, error) { return readRegular(name) }
func (osFS) ReadFileMode(name string) ([]byte, fs.FileMode, error) {
	return readRegularMode(name, maxFileSize)
}
func (osFS) ReadFileTail(name string, limit int64) ([]byte, error) {
	return readRegularTail(name, limit)
}
func (osFS) Lstat(name string) (fs.FileInfo, error)     { return os.Lstat(name) }
func (osFS) Stat(name string) (fs.FileInfo, error)      { return os.Stat(name) }
func (osFS) Readlink(name string) (string, error)       { return os.Readlink(name) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }
func (osFS) Symlink(target, name string) error          { return os.Symlink(target, name) }
func (osFS) Rename(from, to string) error               { return os.Rename(from, to) }
func (osFS) Remove(name string) error                   { return os.Remove(name) }
func (osFS) RemoveAll(name string) error                { return os.RemoveAll(name) }
func (osFS) Mkdir(name string, perm fs.FileMode) error  { return os.Mkdir(name, perm) }
func (osFS) Exchange(a, b string) error                 { return exchange(a, b) }
func (osFS) RenameNoReplace(from, to string) error      { return renameNoReplace(from, to) }
func (osFS) SyncDir(dir string) error                   { return atomicfile.SyncDir(dir) }
func (osFS) TryLock(name string) (func() error, bool, error) {
	return tryLock(name)
}
func (osFS) Chtimes(name string, atime, mtime time.Time) error { return os.Chtimes(name, atime, mtime) }
func (osFS) Chmod(name string, mode fs.FileMode) error         { return chmodNoFollow(name, mode) }
func (osFS) EvalSymlinks(name string) (string, error)          { return filepath.EvalSymlinks(name) }
func (osFS) Lchown(name string, uid, gid int) error            { return os.Lchown(name, uid, gid) }

func (osFS) Append(name string, data []byte, durable bool) error {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_APPEND|os.O_CREATE|oNoFollow, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return err
	}
	if fi.Mode().Perm() != 0o600 {
		_ = f.Chmod(0o600) // created under a umask that took bits away
	}
	if fi.Size() > 0 {
		// A line torn by a crash must not swallow the next one.
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			data = append([]byte{'\n'}, data...)
		}
	}
	_, werr := f.Write(data)
	var serr error
	if durable {
		serr = f.Sync()
	}
	cerr := f.Close()
	return errors.Join(werr, serr, cerr)
}

func (osFS) CreateTemp(dir, pattern string) (tempFile, error) {
	// os.CreateTemp opens with O_RDWR|O_CREATE|O_EXCL and mode 0600.
	return os.CreateTemp(dir, pattern)
}

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
func createTempSymlink(fsys fileSystem, dest, target string) (string, error) {
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
func inspect(fsys fileSystem, path string) (entry, error) {
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
	return errors.Is(err, errNotRegular) || errors.Is(err, ErrTooLarge) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EISDIR)
}

// isSymlink reports whether path is a symlink (not followed).
func isSymlink(fsys fileSystem, path string) bool {
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
func syncDirOf(fsys fileSystem, path string) error {
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("credslots: sync directory of %s: %w", path, err)
	}
	return nil
}
