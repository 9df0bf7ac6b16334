package credslots

// This file wires the locks a change is made under into the Manager: the
// package's own file lock in the private directory, and the locks the
// format's CLI takes around a token refresh. The protocols themselves
// (proper-lockfile's directories, Claude Code's owner record, flock) live
// in internal/clilock; what stays here is which locks, in which order,
// with which times, and what the journal records of them.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gptme/credslots/internal/clilock"
	"github.com/gptme/credslots/internal/disk"
)

// maxHeartbeat is the longest a held CLI lock directory goes without its
// mtime refreshed: Claude Code 2.1.332 refreshes its own every 5 s.
const maxHeartbeat = 5 * time.Second

// cliLock is one lock a CLI takes around its token refresh.
type cliLock struct {
	path string
	// stale is the age after which a lock directory is abandoned: the
	// longest any supported release of the CLI uses for it. Zero for a
	// flock, which its holder's death releases by itself.
	stale time.Duration
	// name says which lock it is, for messages ("refresh lock").
	name string
	// owner is the owner record that speaks for this lock ("" for none):
	// while it names a live process the lock is never taken over.
	owner string
	// legacy marks Claude Code's <realpath(D)>.lock: the record's
	// legacyLockBirthtimeMs identifies it, and a parent directory the user
	// cannot write (EACCES, EPERM, EROFS) makes the change go on without
	// it, as Claude Code does.
	legacy bool
	// writesOwner marks the lock whose owner record the package writes
	// while holding it, when it can produce every field exactly.
	writesOwner bool
	// optional marks a lock whose parent directory the user may not be
	// able to write (.claude.json.lock in a root-owned home): the change
	// goes on without it, as Claude Code does.
	optional bool
}

// spec is cl as clilock takes it, its times scaled by scale (1 but in
// tests): beat at most half the stale time and at most every 5 s.
func (cl cliLock) spec(scale float64) clilock.Spec {
	stale := time.Duration(float64(cl.stale) * scale)
	return clilock.Spec{
		Path: cl.path, Name: cl.name, Stale: stale,
		Beat:  min(stale/2, time.Duration(float64(maxHeartbeat)*scale)),
		Owner: cl.owner, Legacy: cl.legacy, Optional: cl.optional,
	}
}

// dirLock is a held lock directory (see clilock.Dir).
type dirLock struct {
	*clilock.Dir
	path string
}

// verify returns an error wrapping [ErrLockLost] when the lock was taken over.
func (l *dirLock) verify() error { return l.Verify() }

// release removes the lock directory if it is still this holder's.
func (l *dirLock) release() { l.Release() }

// takeDirLock creates the lock directory path, waiting until deadline while
// another holder keeps it fresh, and taking it over once its mtime is older
// than stale, as proper-lockfile does.
func takeDirLock(ctx context.Context, fsys disk.FS, path string, stale time.Duration, deadline time.Time) (*dirLock, error) {
	spec := clilock.Spec{Path: path, Name: "CLI lock", Stale: stale, Beat: min(stale/2, maxHeartbeat)}
	d, _, err := clilock.Take(ctx, fsys, spec, time.Now(), deadline, nil)
	if err != nil {
		return nil, err
	}
	return &dirLock{Dir: d, path: path}, nil
}

// loggedOnce remembers the messages logged once per process and path.
var loggedOnce sync.Map

// lockCache is what a Manager keeps between changes about its locks.
type lockCache struct {
	// real is the creds dir's resolved path, with the directory it named.
	real atomic.Pointer[realDir]
	// lockSeen is set once the package's lock file was seen to exist: it
	// is never removed, so there is no first change to look out for again.
	lockSeen atomic.Bool
	// cli is the CLI locks last listed, with the real path they are for.
	cli atomic.Pointer[cliLocksFor]
	// leasesSeen is set while the leases directory was last seen to exist:
	// a hint, read without a lock, that a switch may have a seat to
	// recover (the proof is the lstat under the package's lock).
	leasesSeen atomic.Bool
	// sweepDue is when, on monoNow's clock, the next sweep may be due
	// (see sweepIfDue); 0 when unknown.
	sweepDue atomic.Int64
}

// realDir is a resolved creds dir: its real path and what stat said of it.
type realDir struct {
	path string
	fi   os.FileInfo
}

// mutation is one change in progress: the locks it holds, released by end.
type mutation struct {
	release []func()
	dirs    []*dirLock
	// Room for what a change with every CLI lock holds, so that taking them
	// grows no slice: the lock file, four locks, the owner record, the
	// journal and the held marker; four lock directories.
	releaseRoom [8]func()
	dirsRoom    [4]*dirLock
	// owners is what the change knows of its directories' owners, for the
	// files it creates (see ownerMemo): &memo, or nil.
	owners *ownerMemo
	memo   ownerMemo
	// after runs once every lock is released (the WithOnChange hook).
	after []func()
	// claudeJSON is the .claude.json found when the CLI's locks were
	// taken ("" for none), when claudeJSONSeen.
	claudeJSON     string
	claudeJSONSeen bool
}

// end releases every lock, the last taken first, then runs what waited for
// the release.
func (mu *mutation) end() {
	for i := len(mu.release) - 1; i >= 0; i-- {
		mu.release[i]()
	}
	mu.release = nil
	after := mu.after
	mu.after = nil
	for _, f := range after {
		f()
	}
}

// verify returns an error wrapping [ErrLockLost] when a CLI's lock directory
// this change holds was taken over. Callers run it right before each step
// that changes a file another process reads.
func (mu *mutation) verify() error {
	for _, l := range mu.dirs {
		if err := l.verify(); err != nil {
			return err
		}
	}
	return nil
}

// beginMutation serializes a change: it makes the private directory, takes
// the package's lock in it and then the format's CLI locks (unless turned
// off), all within the lock timeout.
func (m *Manager) beginMutation() (*mutation, error) {
	return m.beginMutationContext(context.Background())
}

// beginMutationContext is beginMutation whose waits for the locks end with
// ctx; a ctx already done changes nothing, not even the private directory.
func (m *Manager) beginMutationContext(ctx context.Context) (*mutation, error) {
	if err := notStarted(ctx); err != nil {
		return nil, err
	}
	return m.begin(ctx, m.cfg.cliLocks)
}

// notStarted is the error of a change whose ctx is done before it starts;
// nil while ctx is not done.
func notStarted(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("credslots: change not started: %w", err)
	}
	return nil
}

// beginOwnMutation serializes a change that writes only the package's own
// files (state, journal, fingerprint sidecars): it takes the package's lock
// and none of the CLI's, which guard the CLI's files, waiting no longer than
// ctx allows; a ctx already done changes nothing.
func (m *Manager) beginOwnMutation(ctx context.Context) (*mutation, error) {
	if err := notStarted(ctx); err != nil {
		return nil, err
	}
	return m.begin(ctx, false)
}

// begin takes the package's lock and, when cli, the format's CLI locks,
// waiting no longer than ctx allows.
func (m *Manager) begin(ctx context.Context, cli bool) (*mutation, error) {
	fsys := m.cfg.fs
	// The private directory is there but before the first change: its
	// lstat says so, and whose it is, for the lock file's owner.
	priv, err := fsys.Lstat(m.private)
	if err != nil || !priv.IsDir() {
		priv = nil
		if err := m.ensurePrivateDir(m.private); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	deadline := start.Add(m.cfg.lockTimeout)
	unlock, err := clilock.LockFile(ctx, fsys, "the package's lock", m.lockPath, start, deadline)
	if err != nil {
		return nil, err
	}
	m.locks.lockSeen.Store(true)
	mu := &mutation{memo: ownerMemo{m: m, root: disk.RunningAsRoot()}}
	mu.release, mu.dirs = append(mu.releaseRoom[:0], unlock), mu.dirsRoom[:0]
	owners := &mu.memo
	mu.owners = owners
	owners.seed(m.private, priv)
	owners.own(m.lockPath)
	if !cli {
		return mu, nil
	}
	locks, err := m.cliLockPathsSeeding(owners)
	if err != nil {
		mu.end()
		return nil, err
	}
	if cl, ok := m.claudeJSONLock(mu); ok {
		// Tried once with the CLI's locks (last, as Claude Code takes it
		// inside its refresh), so that the journal's intent names it and a
		// killed change's is taken back at once; held by another, the
		// splice waits for it, and gives up alone.
		locks = append(locks, cl)
	}
	// Under the package's lock, the journal's intent of a change that never
	// ended names the CLI locks that killed change held: those directories,
	// unchanged, are ours to take back at once.
	takeBack := m.leftoverLocks()
	var refresh, legacy *dirLock
	legacyDone := false
	for _, cl := range locks {
		d := deadline
		if cl.optional {
			d = time.Now() // one try: a holder's lock is waited for by the step that needs it
		}
		l, skipped, err := mu.take(ctx, fsys, cl, m.cfg.staleScale, start, d, takeBack)
		if err != nil && cl.optional && errors.Is(err, ErrLockTimeout) {
			continue
		}
		if err != nil {
			mu.end()
			return nil, err
		}
		if skipped && cl.optional {
			continue
		}
		if skipped {
			if _, seen := loggedOnce.LoadOrStore("legacy:"+cl.path, true); !seen {
				m.cfg.logger.Warn("legacy lock skipped: its parent directory is not writable, or a stale entry that is no lock directory is in its place; going on without it, as Claude Code does",
					"path", cl.path)
			}
		} else {
			owners.own(cl.path)
		}
		switch {
		case cl.writesOwner:
			refresh = l
		case cl.legacy:
			legacy, legacyDone = l, true
		}
		if refresh != nil && legacyDone {
			m.writeOwnerRecord(mu, refresh, legacy, owners)
			legacyDone = false
		}
	}
	m.held.Store(m.heldBy(mu))
	mu.release = append(mu.release, func() { m.held.Store(nil) })
	return mu, nil
}

// take acquires one CLI lock and adds it to the mutation; a legacy lock
// whose parent is not writable is skipped (nil lock, skipped true).
func (mu *mutation) take(ctx context.Context, fsys disk.FS, cl cliLock, scale float64, start, deadline time.Time, takeBack clilock.TakeBack) (*dirLock, bool, error) {
	if cl.stale == 0 {
		unlock, err := clilock.LockFile(ctx, fsys, cl.name, cl.path, start, deadline)
		if err != nil {
			return nil, false, err
		}
		mu.release = append(mu.release, unlock)
		return nil, false, nil
	}
	d, skipped, err := clilock.Take(ctx, fsys, cl.spec(scale), start, deadline, takeBack)
	if err != nil || skipped {
		return nil, skipped, err
	}
	l := &dirLock{Dir: d, path: cl.path}
	mu.dirs = append(mu.dirs, l)
	mu.release = append(mu.release, l.release)
	return l, false, nil
}

// writeOwnerRecord writes this process's owner record beside the refresh
// lock it holds (see clilock.WriteOwner), so that Claude Code can take the
// lock over at once should this process die; none when a field cannot be
// produced exactly or a record is there already. The record is removed
// before the legacy and refresh locks taken earlier are released, after
// the storage-write lock taken later, as Claude Code removes its own.
func (m *Manager) writeOwnerRecord(mu *mutation, refresh, legacy *dirLock, owners *ownerMemo) {
	path := ownerPathFor(refresh.path)
	var lg *clilock.Dir
	if legacy != nil {
		lg = legacy.Dir
	}
	remove, err := clilock.WriteOwner(m.cfg.fs, path, refresh.Dir, lg)
	if err != nil {
		m.cfg.logger.Warn("owner record not written", "path", path, "reason", err.Error())
		return
	}
	if remove == nil {
		return
	}
	owners.own(path)
	mu.release = append(mu.release, remove)
}

// ownerPathFor is the owner record of the refresh lock at lockPath.
func ownerPathFor(lockPath string) string { return clilock.OwnerPath(lockPath) }

// LockHolder is what a journal intent record ([JournalEntry.Holder]) says
// of the process making the change and the CLI lock directories it holds,
// so that a later change can prove the directories a killed change left
// its own and take them back at once. It is recorded only where birthtimes
// are known (Linux).
type LockHolder struct {
	PID       int        `json:"pid"`
	ProcStart string     `json:"proc_start"` // field 22 of /proc/<pid>/stat
	Locks     []HeldLock `json:"locks"`
}

// HeldLock identifies one lock directory a change held: a directory that
// was removed and made again has another birthtime. [Manager.Journal]
// gives Path absolute; the journal's line holds it relative to the creds
// dir when the lock is in it or beside it (Claude Code's legacy lock), so
// that the intent a switch fsyncs is short.
type HeldLock struct {
	Path      string `json:"path"`
	Inode     uint64 `json:"inode"`
	BirthSec  int64  `json:"birth_sec"`
	BirthNsec int64  `json:"birth_nsec"`
}

// heldLock is h as the journal records it.
func heldLock(h clilock.Held) HeldLock {
	return HeldLock{Path: h.Path, Inode: h.Inode, BirthSec: h.BirthSec, BirthNsec: h.BirthNsec}
}

// heldBy describes the CLI lock directories mu holds, for the intent
// record of the change made under them, from what taking them read (no
// system call); nil where a birthtime is unknown (then leftovers wait for
// their stale time). Paths are as the journal holds them (lockPathIn).
func (m *Manager) heldBy(mu *mutation) *LockHolder {
	me, ok := clilock.Self()
	if !ok || len(mu.dirs) == 0 {
		return nil
	}
	marker := &LockHolder{PID: clilock.PID(), ProcStart: me.Start, Locks: make([]HeldLock, 0, len(mu.dirs))}
	for _, l := range mu.dirs {
		h, ok := clilock.Identify(l.path, l.Stat())
		if !ok {
			return nil
		}
		l := heldLock(h)
		l.Path = lockPathIn(m.dir, l.Path)
		marker.Locks = append(marker.Locks, l)
	}
	return marker
}

// lockPathIn is path, a lock directory's, as an intent record holds it:
// relative to the creds dir dir when it names an entry of dir or of dir's
// parent ("../<name>", the legacy lock), as it is otherwise; in each case
// resolveLockPath gives path back. dir is clean and absolute; so is every
// lock path (a relative one is kept as it is, and resolves to itself
// unless it has one of the two relative forms).
func lockPathIn(dir, path string) string {
	if !filepath.IsAbs(path) {
		return path
	}
	if name, ok := entryOf(dir, path); ok {
		return name // a substring: no allocation
	}
	if parent := filepath.Dir(dir); parent != dir {
		if name, ok := entryOf(parent, path); ok {
			return ".." + string(filepath.Separator) + name
		}
	}
	return path
}

// entryOf is the name of path's entry in the clean directory dir, when
// path is exactly dir's entry of a plain name.
func entryOf(dir, path string) (string, bool) {
	prefix := len(dir)
	if !strings.HasSuffix(dir, string(filepath.Separator)) {
		prefix++
	}
	if len(path) <= prefix || !strings.HasPrefix(path, dir) || !os.IsPathSeparator(path[prefix-1]) {
		return "", false
	}
	name := path[prefix:]
	return name, plainName(name)
}

// plainName reports whether name names one directory entry: not empty, "."
// or "..", and without a separator.
func plainName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsRune(name, filepath.Separator) && !strings.ContainsRune(name, '/')
}

// resolveLockPath is the path of a lock directory an intent record names
// (lockPathIn): a name, or ".." and a name, is the creds dir dir's; any
// other path is as written.
func resolveLockPath(dir, path string) string {
	name := strings.TrimPrefix(path, ".."+string(filepath.Separator))
	if !plainName(name) || filepath.IsAbs(path) || filepath.VolumeName(path) != "" {
		return path
	}
	return filepath.Join(dir, path)
}

// leftoverLocks returns the test that a lock directory was left by a
// change that was killed: the journal's newest intent naming held locks
// names a process that is gone, and the directory is one it held,
// unchanged since (same path, inode and birthtime), so never released. The caller holds the
// package's lock, so that no live change is mid-way. The journal is read
// only when a lock directory is found in the way.
func (m *Manager) leftoverLocks() clilock.TakeBack {
	var once sync.Once
	var marker *LockHolder
	load := func() {
		entries, err := m.readJournal()
		if err != nil {
			return
		}
		for i := len(entries) - 1; i >= 0; i-- {
			e := entries[i]
			if e.Phase != phaseIntent || e.Holder == nil {
				continue
			}
			// The newest change that held CLI locks. Even when it
			// journaled its outcome, it holds its locks until it ends;
			// a directory it held that is still there, unchanged, was
			// never released: its process was killed.
			h := e.Holder
			if start, _, exists := clilock.ProcStat(h.PID); exists && start == h.ProcStart && h.PID != clilock.PID() {
				return // still running (it cannot be, under our lock; be safe)
			}
			marker = h
			// An owner record the killed change wrote is the package's own.
			for _, l := range h.Locks {
				path := ownerPathFor(l.Path)
				if rec, ok := clilock.ReadOwner(m.cfg.fs, path); ok && rec.PID == h.PID && rec.ProcStart != nil && *rec.ProcStart == h.ProcStart {
					_ = m.cfg.fs.Remove(path)
				}
			}
			return
		}
	}
	return func(path string, st disk.LockStat) bool {
		once.Do(load)
		if marker == nil {
			return false
		}
		h, ok := clilock.Identify(path, st)
		if !ok {
			return false
		}
		cur := heldLock(h)
		for _, e := range marker.Locks {
			if e == cur {
				m.cfg.logger.Info("took back a lock left by a killed change", "path", path, "pid", marker.PID)
				return true
			}
		}
		return false
	}
}

// firstChange reports whether no change was ever made in this creds dir:
// there is no lock file yet, so taking the locks would create files. Once
// the lock file was seen it is not looked for again: the package never
// removes it, and should someone else, a refusal would only make the
// package's own private directory and lock file again.
func (m *Manager) firstChange() bool {
	if m.locks.lockSeen.Load() {
		return false
	}
	if _, err := m.cfg.fs.Lstat(m.lockPath); err != nil {
		return true
	}
	m.locks.lockSeen.Store(true)
	return false
}

// cliLockPaths lists the format's CLI locks for this creds dir, in the
// order the CLI takes them.
func (m *Manager) cliLockPaths() ([]cliLock, error) { return m.cliLockPathsSeeding(nil) }

// cliLockPathsSeeding is cliLockPaths that tells owners, when not nil,
// what its stat of the creds dir said.
func (m *Manager) cliLockPathsSeeding(owners *ownerMemo) ([]cliLock, error) {
	var real string
	if m.cfg.format.needsRealDir() {
		r, fi, err := m.realCredsDir()
		if err != nil {
			return nil, err
		}
		if owners != nil {
			owners.seed(m.dir, fi)
		}
		real = r
	}
	// The list depends only on the creds dir and its real path: built
	// once, and handed out capped so that an append copies it.
	if c := m.locks.cli.Load(); c != nil && c.real == real {
		return c.locks[:len(c.locks):len(c.locks)], nil
	}
	locks := m.cfg.format.cliLocks(m.dir, real)
	m.locks.cli.Store(&cliLocksFor{real: real, locks: locks})
	return locks[:len(locks):len(locks)], nil
}

// cliLocksFor is the format's CLI locks for a creds dir of real path real.
type cliLocksFor struct {
	real  string
	locks []cliLock
}

// realCredsDir is the creds dir's real path (where Claude Code puts its
// legacy lock, <realpath(dir)>.lock), resolved on the first change and kept
// while it still names the creds dir itself: an lstat of it finds the same
// directory (not a symlink to it) that a stat of the creds dir finds. One
// lstat per change when the creds dir is its own real path, two stats
// otherwise, instead of an lstat of every component up to the root. A
// creds dir moved (its old real path gone, or another entry there) or
// re-linked to another directory is resolved again. A directory above the
// real one replaced by a symlink to it changes nothing: the legacy lock's
// name then still reaches the same entry.
func (m *Manager) realCredsDir() (string, os.FileInfo, error) {
	if c := m.locks.real.Load(); c != nil {
		if c.path == m.dir {
			if fi, err := m.cfg.fs.Lstat(m.dir); err == nil && fi.IsDir() && os.SameFile(c.fi, fi) {
				return c.path, fi, nil
			}
		} else if fi, err := m.cfg.fs.Stat(m.dir); err == nil && os.SameFile(c.fi, fi) {
			if rfi, rerr := m.cfg.fs.Lstat(c.path); rerr == nil && rfi.IsDir() && os.SameFile(rfi, fi) {
				return c.path, fi, nil
			}
		}
	}
	fi, err := m.cfg.fs.Stat(m.dir)
	if err != nil {
		fi = nil
	}
	r, err := m.cfg.fs.EvalSymlinks(m.dir)
	if err != nil {
		return "", nil, fmt.Errorf("credslots: resolve creds dir %s: %w", m.dir, err)
	}
	real := filepath.Clean(r)
	if fi != nil {
		m.locks.real.Store(&realDir{path: real, fi: fi})
	}
	return real, fi, nil
}
