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
	"time"

	"github.com/gptme/credslots/internal/atomicfile"
)

// tmpMarker is part of every temporary name the package creates. Such names
// start with a dot followed by the destination's base name, so they never
// match a slot, backup or sidecar name built from a template.
const (
	tmpMarker     = atomicfile.TempMarker
	tmpLinkMarker = ".credslots.tmp-link."
	// sweepAge is how old a leftover temp file must be before a mutation removes it.
	sweepAge = time.Minute
)

// prevSuffix is appended to a slot or live path to name its one-generation backup.
const prevSuffix = ".prev"

// lockSuffix is appended to the live path to name the manager's lock file.
const lockSuffix = ".lock"

// errExchangeUnsupported is returned by fileSystem.Exchange where the platform
// has no atomic exchange; callers fall back to check-then-rename.
var errExchangeUnsupported = errors.New("atomic exchange not supported")

// tempFile is the subset of *os.File the atomic writer needs.
type tempFile = atomicfile.File

// fileSystem is the seam between the package and the disk.
type fileSystem interface {
	ReadFile(name string) ([]byte, error)
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
}

// osFS is the real file system.
type osFS struct{}

func (osFS) ReadFile(name string) ([]byte, error)       { return os.ReadFile(name) }
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
	return strings.Contains(base, tmpMarker) || strings.Contains(base, tmpLinkMarker)
}

// writeFileAtomic replaces dest with data through fsys; see atomicfile.WriteFile.
func writeFileAtomic(fsys fileSystem, dest string, data []byte) error {
	return atomicfile.WriteFile(fsys, dest, data)
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
	kind entryKind
	data []byte // content, for kindFile (and the target's content for kindSymlink)
	hash string // sha256 of data; "" when there is no readable content
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

// inspect reads path once (following a symlink) and classifies it. A read
// error other than "does not exist" is returned as is.
func inspect(fsys fileSystem, path string) (entry, error) {
	data, rerr := fsys.ReadFile(path)
	fi, lerr := fsys.Lstat(path)
	if lerr != nil {
		if errors.Is(lerr, fs.ErrNotExist) {
			return entry{kind: kindMissing}, nil
		}
		return entry{}, lerr
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		if rerr != nil {
			if errors.Is(rerr, fs.ErrNotExist) {
				return entry{kind: kindBrokenSymlink}, nil
			}
			return entry{kind: kindSymlink}, rerr
		}
		return entry{kind: kindSymlink, data: data, hash: hashBytes(data)}, nil
	case fi.Mode().IsRegular():
		if rerr != nil {
			return entry{kind: kindFile}, rerr
		}
		return entry{kind: kindFile, data: data, hash: hashBytes(data)}, nil
	default:
		if rerr == nil {
			rerr = fmt.Errorf("credslots: %s is not a regular file or symlink", path)
		}
		return entry{kind: kindOther}, rerr
	}
}

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

// swapInSymlink makes path a symlink to target, atomically: readers see the
// old entry or the new symlink, never nothing. want is what the caller
// validated at path; a regular file at path is replaced only while it still
// holds want's content. Otherwise path is left holding that newer entry and
// ErrLiveChanged is returned.
//
// On Linux (renameat2 RENAME_EXCHANGE) and macOS on APFS (renamex_np
// RENAME_SWAP) the symlink is swapped in and what came out is inspected
// afterwards; a mismatch is swapped back. Where no atomic exchange exists the
// entry is re-checked immediately before a plain rename, which leaves a window
// of a few microseconds in which a concurrent writer's new file can be
// replaced.
func swapInSymlink(fsys fileSystem, path, target string, want entry) (err error) {
	tmp, err := createTempSymlink(fsys, path, target)
	if err != nil {
		return err
	}
	tmpIsOurs := true // tmp holds our symlink, so removing it loses nothing
	defer func() {
		if tmpIsOurs {
			if err != nil {
				_ = fsys.Remove(tmp)
			}
		}
	}()

	xerr := fsys.Exchange(tmp, path)
	switch {
	case xerr == nil:
		tmpIsOurs = false
		return settleExchange(fsys, tmp, path, want, &tmpIsOurs)
	case errors.Is(xerr, fs.ErrNotExist):
		// Nothing at path (any more): place the symlink only if still nothing.
		return placeIfAbsent(fsys, tmp, path, &tmpIsOurs)
	case errors.Is(xerr, errExchangeUnsupported):
		return checkThenRename(fsys, tmp, path, want, &tmpIsOurs)
	default:
		return fmt.Errorf("credslots: exchange %s: %w", path, xerr)
	}
}

// placeIfAbsent moves tmp to path only if path does not exist.
func placeIfAbsent(fsys fileSystem, tmp, path string, tmpIsOurs *bool) error {
	err := fsys.RenameNoReplace(tmp, path)
	if errors.Is(err, errExchangeUnsupported) {
		return checkThenRename(fsys, tmp, path, entry{kind: kindMissing}, tmpIsOurs)
	}
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("credslots: %s appeared meanwhile: %w", path, ErrLiveChanged)
	}
	if err != nil {
		return fmt.Errorf("credslots: rename into %s: %w", path, err)
	}
	*tmpIsOurs = false
	return syncDirOf(fsys, path)
}

// checkThenRename is the portable fallback: re-inspect path and rename over
// it only if what is there may be discarded.
func checkThenRename(fsys fileSystem, tmp, path string, want entry, tmpIsOurs *bool) error {
	now, err := inspect(fsys, path)
	if err != nil {
		return fmt.Errorf("credslots: re-check %s: %w", path, err)
	}
	if now.kind != kindMissing && !disposable(now, want.hash) {
		return fmt.Errorf("credslots: %s changed since it was checked: %w", path, ErrLiveChanged)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return fmt.Errorf("credslots: rename into %s: %w", path, err)
	}
	*tmpIsOurs = false
	return syncDirOf(fsys, path)
}

// settleExchange runs after tmp and path were exchanged: tmp now holds what
// was at path. If that may be discarded and the directory is synced, it is
// removed; otherwise it is swapped back so the live path is as it was (or
// holds the newer entry a concurrent writer put there).
func settleExchange(fsys fileSystem, tmp, path string, want entry, tmpIsOurs *bool) error {
	out, err := inspect(fsys, tmp)
	switch {
	case err != nil:
		err = fmt.Errorf("credslots: inspect replaced %s: %w", path, err)
	case !disposable(out, want.hash):
		err = fmt.Errorf("credslots: %s changed since it was checked: %w", path, ErrLiveChanged)
	default:
		err = syncDirOf(fsys, path)
	}
	if err == nil {
		// Should the removal fail, the leftover is a verified duplicate or
		// a symlink, which a later sweep removes.
		_ = fsys.Remove(tmp)
		return nil
	}
	// Put the entry we took out back in place.
	if xerr := fsys.Exchange(tmp, path); xerr != nil {
		rescue(fsys, tmp, path)
		return errors.Join(err, fmt.Errorf("credslots: swap back %s: %w", path, xerr))
	}
	*tmpIsOurs = true
	// If yet another writer replaced path between the two exchanges, tmp now
	// holds that entry rather than our symlink; keep it.
	if back, lerr := fsys.Lstat(tmp); lerr == nil && back.Mode()&fs.ModeSymlink == 0 {
		*tmpIsOurs = false
		rescue(fsys, tmp, path)
	}
	return err
}

// rescue moves an unverified entry out of a temporary name to path's backup,
// so that no sweep ever deletes it.
func rescue(fsys fileSystem, tmp, path string) {
	if err := fsys.Rename(tmp, path+prevSuffix); err == nil {
		_ = syncDirOf(fsys, path)
	}
}

func syncDirOf(fsys fileSystem, path string) error {
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("credslots: sync directory of %s: %w", path, err)
	}
	return nil
}

// sweepTemps removes the package's temporaries last modified before cutoff in dir,
// left by a process that was killed mid-operation. A regular file under a
// symlink-swap name may be the only copy of a credential (the process died
// between exchange and verification), so it is moved to livePath's backup
// instead of being removed, unless known reports its hash as kept elsewhere.
func sweepTemps(fsys fileSystem, dir, livePath string, cutoff time.Time, known func(hash string) bool) {
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range ents {
		name := de.Name()
		if !isTempName(name) {
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := fsys.Lstat(p)
		if err != nil || fi.ModTime().After(cutoff) {
			continue
		}
		switch {
		case fi.IsDir():
			// A private working copy (the command's heal --dry-run) whose
			// process died: every file in it is a copy.
			_ = fsys.RemoveAll(p)
			continue
		case strings.Contains(name, tmpLinkMarker) && fi.Mode().IsRegular():
			if data, err := fsys.ReadFile(p); err != nil || !known(hashBytes(data)) {
				rescue(fsys, p, livePath)
				continue
			}
		}
		_ = fsys.Remove(p)
	}
}

// lockPollInterval bounds the wait between attempts to take a busy lock.
const lockPollInterval = 25 * time.Millisecond

// refreshLockStale is the age at which a CLI's refresh lock directory is
// considered abandoned, as its lock library does.
const refreshLockStale = 60 * time.Second

// acquire retries try until it succeeds, fails, or timeout passes.
func acquire(what string, timeout time.Duration, try func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		ok, err := try()
		if err != nil {
			return fmt.Errorf("credslots: take %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("credslots: %s still held after %s: %w", what, timeout, ErrLockTimeout)
		}
		time.Sleep(min(wait, time.Until(deadline)+time.Millisecond))
		wait = min(2*wait, lockPollInterval)
	}
}

// lockFile takes the exclusive advisory lock on path, waiting up to timeout.
func lockFile(fsys fileSystem, path string, timeout time.Duration) (func(), error) {
	var unlock func() error
	err := acquire("lock "+path, timeout, func() (bool, error) {
		u, ok, err := fsys.TryLock(path)
		unlock = u
		return ok, err
	})
	if err != nil {
		return nil, err
	}
	return func() { _ = unlock() }, nil
}

// lockDir takes a mkdir-style lock (the one CLIs use around a token refresh),
// breaking it when its mtime is older than refreshLockStale.
func lockDir(fsys fileSystem, dir string, timeout time.Duration) (func(), error) {
	err := acquire("refresh lock "+dir, timeout, func() (bool, error) {
		err := fsys.Mkdir(dir, 0o700)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return false, err
		}
		fi, serr := fsys.Lstat(dir)
		if serr == nil && fi.IsDir() && time.Since(fi.ModTime()) > refreshLockStale {
			_ = fsys.Remove(dir) // stale: its holder died; the next attempt retakes it
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return func() { _ = fsys.Remove(dir) }, nil
}

// beginMutation serializes a change: it takes the manager's file lock (and the
// CLI's refresh lock when configured) and sweeps stale temporaries. The
// returned function releases everything.
func (m *Manager) beginMutation() (func(), error) {
	fsys := m.cfg.fs
	unlock, err := lockFile(fsys, m.lockPath, m.cfg.lockTimeout)
	if err != nil {
		return nil, err
	}
	release := unlock
	if m.cfg.refreshLockDir != "" {
		unlockDir, err := lockDir(fsys, m.cfg.refreshLockDir, m.cfg.lockTimeout)
		if err != nil {
			unlock()
			return nil, err
		}
		release = func() { unlockDir(); unlock() }
	}
	m.sweep()
	return release, nil
}

// sweep removes stale temporaries from every directory the manager writes to.
func (m *Manager) sweep() {
	dirs := map[string]bool{filepath.Dir(m.live): true}
	for _, sub := range m.subs {
		dirs[filepath.Dir(m.slots[sub])] = true
		dirs[filepath.Dir(m.prints[sub])] = true
	}
	var hashes map[string]bool
	known := func(h string) bool {
		if hashes == nil {
			hashes = map[string]bool{}
			for _, sh := range m.slotHashes() {
				hashes[sh] = true
			}
		}
		return hashes[h]
	}
	cutoff := time.Now().Add(-m.cfg.sweepAge)
	for dir := range dirs {
		sweepTemps(m.cfg.fs, dir, m.live, cutoff, known)
	}
}
