package clilock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/gptme/credslots/internal/disk"
)

// Spec is one lock directory to take, with its times already scaled.
type Spec struct {
	Path string
	// Name says which lock it is, for messages ("Claude Code's refresh lock").
	Name string
	// Stale is the age after which the directory counts as abandoned: the
	// longest any supported release of the CLI uses for it.
	Stale time.Duration
	// Beat is how often a held directory's mtime is refreshed.
	Beat time.Duration
	// Owner is the owner record that speaks for this lock ("" for none):
	// while it names a live process the lock is never taken over.
	Owner string
	// Legacy marks Claude Code's <realpath(D)>.lock: the record's
	// legacyLockBirthtimeMs identifies it.
	Legacy bool
	// Optional marks a lock the change goes on without when its parent
	// directory is not writable (EACCES, EPERM, EROFS), as Claude Code does.
	Optional bool
}

// TakeBack reports whether a lock directory in the way, as st shows it, is
// the caller's own to take back at once (left by a killed change of its).
type TakeBack func(path string, st disk.LockStat) bool

// Dir is a held lock directory.
type Dir struct {
	fsys disk.FS
	path string
	beat time.Duration

	mu    sync.Mutex
	st    disk.LockStat // as this holder made or last touched it
	lost  bool          // another process took it over
	done  bool          // released
	timer *time.Timer   // the heartbeat; nil until started
}

// Unwritable reports a permission or read-only file system error: what
// Claude Code meets, and goes on without, on a lock beside a creds dir
// whose parent the user cannot write.
func Unwritable(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EROFS)
}

// skippable reports whether spec's lock may be gone without on err, as
// Claude Code goes without it: an optional lock on Unwritable; the legacy
// lock also where its path cannot be made at all (ENOENT, ENOTDIR, ELOOP,
// ENAMETOOLONG: "legacy-lock acquire failed" in 2.1.197 and 2.1.332 alike).
func skippable(spec Spec, err error) bool {
	switch {
	case errors.Is(err, fs.ErrExist):
		return false
	case spec.Legacy:
		return Unwritable(err) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) ||
			errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENAMETOOLONG)
	default:
		return spec.Optional && Unwritable(err)
	}
}

// Take creates the lock directory of spec, waiting until deadline while
// another holder keeps it fresh or while its owner record names a live
// process; it takes it over once stale, and at once when the owner record
// or takeBack proves its holder gone. skipped is true, with no lock and no
// error, for an optional or legacy lock whose parent is not writable.
//
// A directory made at once costs a mkdir and one stat (its inode, mtime
// and birth time, which the owner record and the journal need); the
// heartbeat is a timer that first fires after Beat.
func Take(ctx context.Context, fsys disk.FS, spec Spec, start, deadline time.Time, takeBack TakeBack) (d *Dir, skipped bool, err error) {
	path := spec.Path
	d = &Dir{fsys: fsys, path: path, beat: max(spec.Beat, time.Millisecond)}
	held := ""
	err = Acquire(ctx, spec.Name, path, start, deadline, func() string { return held }, func() (bool, error) {
		for attempt := 0; attempt < 2; attempt++ {
			err := fsys.Mkdir(path, 0o700)
			if err == nil {
				st, err := fsys.StatLock(path)
				if err == nil && !st.IsDir() {
					err = fmt.Errorf("%s is not the directory just made", path)
				}
				if err != nil {
					_ = fsys.Rmdir(path)
					return false, err
				}
				d.st = st
				return true, nil
			}
			if skippable(spec, err) {
				skipped = true
				return true, nil
			}
			if !errors.Is(err, fs.ErrExist) {
				return false, err
			}
			st, err := fsys.StatLock(path)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				continue // released meanwhile: try again at once
			case err != nil:
				return false, err
			case !st.IsDir() && spec.Legacy:
				// Claude Code's proper-lockfile counts any entry there as
				// its lock: held while fresh; once stale, its rmdir fails
				// (ENOTDIR) and it goes on without the legacy lock.
				if age := time.Since(st.Mtime); age <= spec.Stale {
					held = fmt.Sprintf("%s is not a lock directory, and Claude Code counts it as held until it is %s old (it is %s old)",
						filepath.Base(path), spec.Stale, age.Round(time.Millisecond))
					return false, nil
				}
				skipped = true
				return true, nil
			case !st.IsDir():
				return false, fmt.Errorf("%s exists and is not a lock directory", path)
			}
			age := time.Since(st.Mtime)
			// The owner record first: a lock it says a live process holds
			// is never taken over, not even one takeBack says is ours.
			takeNow := false
			if spec.Owner != "" {
				if rec, ok := ReadOwner(fsys, spec.Owner); ok {
					switch rec.Judge() {
					case HolderAlive:
						held = fmt.Sprintf("its owner record %s names pid %d, which is alive: it is never taken over while that process lives (the lock is %s old)",
							filepath.Base(spec.Owner), rec.PID, age.Round(time.Millisecond))
						return false, nil
					case HolderGone:
						takeNow = provenGone(rec, spec, st)
					}
				}
			}
			if takeBack != nil && takeBack(path, st) {
				takeNow = true
			}
			if !takeNow && age <= spec.Stale {
				held = fmt.Sprintf("the lock is %s old and counts as abandoned once %s old, unless its holder refreshes it",
					age.Round(time.Millisecond), spec.Stale)
				return false, nil // held, and its holder is alive
			}
			// Abandoned (its holder stopped refreshing it) or proven gone.
			// Look once more right before removing it, so that a lock
			// another process has just taken over is left alone; what
			// remains is the window proper-lockfile itself has between its
			// stat and its rmdir.
			if again, err := fsys.StatLock(path); err != nil || again.Ino != st.Ino || !again.Mtime.Equal(st.Mtime) {
				continue
			}
			if err := fsys.Rmdir(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				if skippable(spec, err) {
					skipped = true // Claude Code, failing the same rmdir, goes on without it
					return true, nil
				}
				return false, err
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, false, err
	}
	if skipped {
		return nil, true, nil
	}
	d.mu.Lock()
	d.timer = time.AfterFunc(d.beat, d.heartbeat)
	d.mu.Unlock()
	return d, false, nil
}

// provenGone applies Claude Code's early-takeover proof to the lock whose
// owner record rec names a process proven gone: the record must be about
// this very lock directory (its birth time), and for the legacy lock its
// legacyLockBirthtimeMs.
func provenGone(rec Owner, spec Spec, st disk.LockStat) bool {
	bt, ok := st.BirthMs()
	if !ok {
		return false
	}
	if spec.Legacy {
		return rec.LegacyLockBirthtimeMs != nil && *rec.LegacyLockBirthtimeMs == bt
	}
	return rec.LockBirthtimeMs == bt
}

// Path is the lock directory's path.
func (d *Dir) Path() string { return d.path }

// Stat is the lock directory as this holder made or last touched it.
func (d *Dir) Stat() disk.LockStat {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st
}

// touch sets the mtime to now, at the millisecond precision proper-lockfile
// compares, and remembers what the file system reports. The caller holds
// d.mu.
func (d *Dir) touch() error {
	now := time.Now().Truncate(time.Millisecond)
	if err := d.fsys.Chtimes(d.path, now, now); err != nil {
		return err
	}
	// The directory carries now from here on: a stat that fails below
	// must not make the next look (ours) take the new mtime for another
	// holder's.
	d.st.Mtime = now
	st, err := d.fsys.StatLock(d.path)
	if err != nil {
		return err
	}
	if !st.IsDir() || st.Ino != d.st.Ino {
		d.lost = true
		return fmt.Errorf("%s was replaced", d.path)
	}
	d.st = st
	return nil
}

// ours reports whether the directory still carries this holder's inode and
// mtime, with one stat. The caller holds d.mu.
func (d *Dir) ours() bool {
	if d.lost {
		return false
	}
	st, err := d.fsys.StatLock(d.path)
	if err != nil || !st.IsDir() || st.Ino != d.st.Ino || !st.Mtime.Equal(d.st.Mtime) {
		d.lost = true
	}
	return !d.lost
}

// heartbeat refreshes the mtime and starts the timer again, unless the
// lock was released or taken over: a compromised lock is never refreshed.
func (d *Dir) heartbeat() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done {
		return
	}
	if !d.ours() {
		return
	}
	if err := d.touch(); err == nil {
		d.timer.Reset(d.beat)
	} else if !d.lost {
		// A refresh that failed (a transient I/O error) is tried again
		// soon, as proper-lockfile retries its own: a lock left to go
		// stale would be taken over while held.
		d.timer.Reset(min(d.beat, retryBeat))
	}
}

// retryBeat is how soon a failed refresh of a held lock is tried again.
const retryBeat = time.Second

// Verify returns an error wrapping ErrLost when the lock is no longer this
// holder's, with one stat. No stale time makes the stat unnecessary: a
// lock is not only taken over once stale, it may also be removed by hand,
// or by a paused CLI whose lock this holder took over releasing it (a
// plain rmdir, as proper-lockfile's unlock does), and made again by
// another party at once.
func (d *Dir) Verify() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ours() {
		return nil
	}
	return fmt.Errorf("credslots: CLI lock %s was taken over by another process: %w", d.path, ErrLost)
}

// Release stops the heartbeat and removes the directory if it is still
// this holder's: a stat (see Verify for why it is always made), then the
// rmdir. A second call does nothing.
func (d *Dir) Release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done {
		return
	}
	d.done = true
	if d.timer != nil {
		d.timer.Stop()
	}
	if d.ours() {
		_ = d.fsys.Rmdir(d.path)
	}
}

// Held identifies a lock directory a change held: a directory that was
// removed and made again has another inode or birth time.
type Held struct {
	Path      string
	Inode     uint64
	BirthSec  int64
	BirthNsec int64
}

// Identify is the Held of the directory at path as st shows it; ok is false
// where the inode or birth time is unknown.
func Identify(path string, st disk.LockStat) (Held, bool) {
	if !st.IsDir() || st.Ino == 0 || !st.Birth || st.BirthSec == 0 && st.BirthNsec == 0 {
		return Held{}, false
	}
	return Held{Path: filepath.Clean(path), Inode: st.Ino, BirthSec: st.BirthSec, BirthNsec: st.BirthNsec}, true
}
