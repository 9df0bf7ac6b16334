package credslots

// This file holds the locks a change is made under: the package's own file
// lock in the private directory, and the locks the format's CLI takes around
// a token refresh, taken the way that CLI takes them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/gptme/credslots/internal/disk"
)

// lockPollInterval bounds the wait between attempts to take a busy lock.
const lockPollInterval = 25 * time.Millisecond

// maxHeartbeat is the longest a held CLI lock directory goes without its
// mtime refreshed: Claude Code 2.1.332 refreshes its own every 5 s.
const maxHeartbeat = 5 * time.Second

// acquire retries try until it succeeds, fails, the deadline passes, or
// ctx ends (an error wrapping ctx.Err()). A timeout names what, says why it
// is still held (held, when given) and how long the change has waited in
// all, since start.
func acquire(ctx context.Context, what string, start, deadline time.Time, held func() string, try func() (bool, error)) error {
	wait := time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("credslots: gave up waiting for %s: %w", what, err)
		}
		ok, err := try()
		if err != nil {
			return fmt.Errorf("credslots: take %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if !time.Now().Before(deadline) {
			why := ""
			if held != nil {
				why = held()
			}
			if why != "" {
				why = "; " + why
			}
			return fmt.Errorf("credslots: %s still held after waiting %s in all%s (raise --lock-timeout or WithLockTimeout to wait longer): %w",
				what, time.Since(start).Round(time.Millisecond), why, ErrLockTimeout)
		}
		pause := time.NewTimer(min(wait, time.Until(deadline)+time.Millisecond))
		select {
		case <-ctx.Done():
			pause.Stop()
			return fmt.Errorf("credslots: gave up waiting for %s: %w", what, ctx.Err())
		case <-pause.C:
		}
		wait = min(2*wait, lockPollInterval)
	}
}

// lockFile takes an exclusive advisory lock (flock) on path, creating it with
// mode 0600 if needed, and waits until deadline. what names it in errors.
func lockFile(ctx context.Context, fsys disk.FS, what, path string, start, deadline time.Time) (func(), error) {
	var unlock func() error
	err := acquire(ctx, what+" "+path, start, deadline, func() string {
		return "it is an flock, released when its holder ends its change or dies"
	}, func() (bool, error) {
		u, ok, err := fsys.TryLock(path)
		unlock = u
		return ok, err
	})
	if err != nil {
		return nil, err
	}
	return func() { _ = unlock() }, nil
}

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

// dirLock is a held lock directory, kept the way proper-lockfile (the lock
// library of Claude Code) keeps one: created with mkdir, its mtime touched
// at least every half stale time (and at least every 5 s) while held so
// that nobody takes it over, and removed on release only if its mtime is
// still the one this holder set.
type dirLock struct {
	fsys  disk.FS
	path  string
	stale time.Duration
	beat  time.Duration // how often the mtime is refreshed

	mu    sync.Mutex
	mtime time.Time // as read back after this holder last set it
	lost  bool      // another process took the lock over

	stop chan struct{}
	done chan struct{}
}

// takeDirLock creates the lock directory path, waiting until deadline while
// another holder keeps it fresh, and taking it over once its mtime is older
// than stale, as proper-lockfile does.
func takeDirLock(ctx context.Context, fsys disk.FS, path string, stale time.Duration, deadline time.Time) (*dirLock, error) {
	l, _, err := takeCLIDir(ctx, fsys, cliLock{path: path, stale: stale, name: "CLI lock"}, stale, min(stale/2, maxHeartbeat), time.Now(), deadline, nil)
	return l, err
}

// isUnwritable reports a permission or read-only file system error: what
// Claude Code meets, and goes on without, on a legacy lock beside a creds
// dir whose parent the user cannot write.
func isUnwritable(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EROFS)
}

// loggedOnce remembers the messages logged once per process and path.
var loggedOnce sync.Map

// takeCLIDir takes the lock directory of cl (stale and beat already
// scaled): it waits while a holder keeps it fresh or while its owner
// record names a live process, takes it over once stale, and at once when
// the owner record or the package's own record of held locks (takeBack)
// proves its holder gone. skipped is true, with no lock and no error, for
// a legacy lock whose parent directory is not writable.
func takeCLIDir(ctx context.Context, fsys disk.FS, cl cliLock, stale, beat time.Duration, start, deadline time.Time, takeBack func(string, fs.FileInfo) bool) (l *dirLock, skipped bool, err error) {
	path := cl.path
	l = &dirLock{fsys: fsys, path: path, stale: stale, beat: max(beat, time.Millisecond)}
	held := ""
	err = acquire(ctx, cl.name+" "+path, start, deadline, func() string { return held }, func() (bool, error) {
		for attempt := 0; attempt < 2; attempt++ {
			err := fsys.Mkdir(path, 0o700)
			if err == nil {
				if terr := l.touch(); terr != nil {
					_ = fsys.Remove(path)
					return false, terr
				}
				return true, nil
			}
			if (cl.legacy || cl.optional) && !errors.Is(err, fs.ErrExist) && isUnwritable(err) {
				skipped = true
				return true, nil
			}
			if !errors.Is(err, fs.ErrExist) {
				return false, err
			}
			fi, err := fsys.Lstat(path)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				continue // released meanwhile: try again at once
			case err != nil:
				return false, err
			case !fi.IsDir():
				return false, fmt.Errorf("%s exists and is not a lock directory", path)
			}
			age := time.Since(fi.ModTime())
			// The owner record first: a lock it says a live process holds
			// is never taken over, not even one the journal says is ours.
			takeNow := false
			if cl.owner != "" {
				if rec, ok := readOwner(fsys, cl.owner); ok {
					switch rec.judge() {
					case holderAlive:
						held = fmt.Sprintf("its owner record %s names pid %d, which is alive: it is never taken over while that process lives (the lock is %s old)",
							filepath.Base(cl.owner), rec.PID, age.Round(time.Millisecond))
						return false, nil
					case holderGone:
						takeNow = provenGone(fsys, rec, cl, path)
					}
				}
			}
			if takeBack != nil && takeBack(path, fi) {
				takeNow = true
			}
			if !takeNow && age <= stale {
				held = fmt.Sprintf("the lock is %s old and counts as abandoned once %s old, unless its holder refreshes it",
					age.Round(time.Millisecond), stale)
				return false, nil // held, and its holder is alive
			}
			// Abandoned (its holder stopped refreshing it) or proven
			// gone. Look once more right before removing it, so that a
			// lock another process has just taken over is left alone; what
			// remains is the window proper-lockfile itself has between its
			// stat and its rmdir.
			if again, err := fsys.Lstat(path); err != nil || !os.SameFile(fi, again) || !again.ModTime().Equal(fi.ModTime()) {
				continue
			}
			if err := fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				if (cl.legacy || cl.optional) && isUnwritable(err) {
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
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.heartbeat()
	return l, false, nil
}

// provenGone applies Claude Code's early-takeover proof to the lock at path
// whose owner record rec names a process proven gone: the record must be
// about this very lock directory (its birthtime), and for the refresh lock
// the legacy lock beside it must be absent or the same holder's.
func provenGone(fsys disk.FS, rec ownerRecord, cl cliLock, path string) bool {
	bt, ok := birthtimeMs(path)
	if !ok {
		return false
	}
	if cl.legacy {
		return rec.LegacyLockBirthtimeMs != nil && *rec.LegacyLockBirthtimeMs == bt
	}
	return rec.LockBirthtimeMs == bt
}

// touch sets the lock directory's mtime to now, at the millisecond precision
// proper-lockfile compares, and remembers the mtime the file system reports.
// The caller holds l.mu or is the only user of l.
func (l *dirLock) touch() error {
	now := time.Now().Truncate(time.Millisecond)
	if err := l.fsys.Chtimes(l.path, now, now); err != nil {
		return err
	}
	fi, err := l.fsys.Lstat(l.path)
	if err != nil {
		return err
	}
	l.mtime = fi.ModTime()
	return nil
}

// ours reports whether the lock directory still carries this holder's mtime.
// The caller holds l.mu.
func (l *dirLock) ours() bool {
	if l.lost {
		return false
	}
	fi, err := l.fsys.Lstat(l.path)
	if err != nil || !fi.IsDir() || !fi.ModTime().Equal(l.mtime) {
		l.lost = true
	}
	return !l.lost
}

// heartbeat keeps the lock fresh until release, and stops once the lock was
// taken over: a compromised lock is never refreshed again.
func (l *dirLock) heartbeat() {
	defer close(l.done)
	tick := time.NewTicker(l.beat)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
			l.mu.Lock()
			ok := l.ours() && l.touch() == nil
			l.mu.Unlock()
			if !ok {
				return
			}
		}
	}
}

// verify returns an error wrapping [ErrLockLost] when the lock was taken over.
func (l *dirLock) verify() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.ours() {
		return fmt.Errorf("credslots: CLI lock %s was taken over by another process: %w", l.path, ErrLockLost)
	}
	return nil
}

// release stops the heartbeat and removes the lock directory if it is still
// this holder's.
func (l *dirLock) release() {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ours() {
		_ = l.fsys.Remove(l.path)
	}
}

// mutation is one change in progress: the locks it holds, released by end.
type mutation struct {
	release []func()
	dirs    []*dirLock
	// after runs once every lock is released (the WithOnChange hook).
	after []func()
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
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("credslots: change not started: %w", err)
	}
	return m.begin(ctx, m.cfg.cliLocks)
}

// beginOwnMutation serializes a change that writes only the package's own
// files (state, journal, fingerprint sidecars): it takes the package's lock
// and none of the CLI's, which guard the CLI's files.
func (m *Manager) beginOwnMutation() (*mutation, error) {
	return m.begin(context.Background(), false)
}

// begin takes the package's lock and, when cli, the format's CLI locks,
// waiting no longer than ctx allows.
func (m *Manager) begin(ctx context.Context, cli bool) (*mutation, error) {
	fsys := m.cfg.fs
	if err := m.ensurePrivateDir(m.private); err != nil {
		return nil, err
	}
	start := time.Now()
	deadline := start.Add(m.cfg.lockTimeout)
	unlock, err := lockFile(ctx, fsys, "the package's lock", m.lockPath, start, deadline)
	if err != nil {
		return nil, err
	}
	m.own(m.lockPath)
	mu := &mutation{release: []func(){unlock}}
	if !cli {
		return mu, nil
	}
	locks, err := m.cliLockPaths()
	if err != nil {
		mu.end()
		return nil, err
	}
	if cl, ok := m.claudeJSONLock(); ok {
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
				m.cfg.logger.Warn("legacy lock skipped: its parent directory is not writable; going on without it, as Claude Code does",
					"path", cl.path)
			}
		} else {
			m.own(cl.path)
		}
		switch {
		case cl.writesOwner:
			refresh = l
		case cl.legacy:
			legacy, legacyDone = l, true
		}
		if refresh != nil && legacyDone {
			m.writeOwnerRecord(mu, refresh, legacy)
			legacyDone = false
		}
	}
	m.held.Store(heldBy(fsys, mu))
	mu.release = append(mu.release, func() { m.held.Store(nil) })
	return mu, nil
}

// take acquires one CLI lock and adds it to the mutation; a legacy lock
// whose parent is not writable is skipped (nil lock, skipped true).
func (mu *mutation) take(ctx context.Context, fsys disk.FS, cl cliLock, scale float64, start, deadline time.Time, takeBack func(string, fs.FileInfo) bool) (*dirLock, bool, error) {
	if cl.stale == 0 {
		unlock, err := lockFile(ctx, fsys, cl.name, cl.path, start, deadline)
		if err != nil {
			return nil, false, err
		}
		mu.release = append(mu.release, unlock)
		return nil, false, nil
	}
	stale := time.Duration(float64(cl.stale) * scale)
	beat := min(stale/2, time.Duration(float64(maxHeartbeat)*scale))
	l, skipped, err := takeCLIDir(ctx, fsys, cl, stale, beat, start, deadline, takeBack)
	if err != nil || skipped {
		return nil, skipped, err
	}
	mu.dirs = append(mu.dirs, l)
	mu.release = append(mu.release, l.release)
	return l, false, nil
}

// writeOwnerRecord writes this process's owner record beside the refresh
// lock it holds, the way Claude Code writes its own (not fsynced), so that Claude Code can
// take the lock over at once should this process die. It writes none when
// a field cannot be produced exactly as Claude Code computes it, or when a
// record is there already (it is never rewritten unless ours); the record
// is removed before the legacy lock is released, if it is still ours.
func (m *Manager) writeOwnerRecord(mu *mutation, refresh, legacy *dirLock) {
	path := ownerPathFor(refresh.path)
	legacyPath := ""
	if legacy != nil {
		legacyPath = legacy.path
	}
	rec, ok := ownRecord(refresh.path, legacyPath)
	if !ok {
		return
	}
	if _, err := m.cfg.fs.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return
	}
	// One write to a new file (0600, never through a symlink), not fsynced,
	// as Claude Code writes its own: a reader sees nothing or all of it, a
	// record lost to a crash only means Claude Code waits for the stale
	// time, and nobody else writes it while the refresh lock is ours.
	if err := m.cfg.fs.Append(path, data, false); err != nil {
		m.cfg.logger.Warn("owner record not written", "path", path, "reason", err.Error())
		return
	}
	m.own(path)
	remove := func() {
		if cur, ok := readOwner(m.cfg.fs, path); ok && cur.mine(rec.LockBirthtimeMs) {
			_ = m.cfg.fs.Remove(path)
		}
	}
	// Released in reverse: before the legacy and refresh locks taken
	// earlier, after the storage-write lock taken later, as Claude Code
	// removes its own.
	mu.release = append(mu.release, remove)
}

// heldBy describes the CLI lock directories mu holds, for the intent
// record of the change made under them; nil where a birthtime is unknown
// (then leftovers wait for their stale time).
func heldBy(fsys disk.FS, mu *mutation) *LockHolder {
	me, ok := selfIdentity()
	if !ok || len(mu.dirs) == 0 {
		return nil
	}
	marker := &LockHolder{PID: os.Getpid(), ProcStart: me.start}
	for _, l := range mu.dirs {
		e, ok := heldIdentity(fsys, l.path)
		if !ok {
			return nil
		}
		marker.Locks = append(marker.Locks, e)
	}
	return marker
}

// leftoverLocks returns the test that a lock directory was left by a
// change that was killed: the journal's newest intent naming held locks
// names a process that is gone, and the directory is one it held,
// unchanged since (same path, inode and birthtime), so never released. The caller holds the
// package's lock, so that no live change is mid-way. The journal is read
// only when a lock directory is found in the way.
func (m *Manager) leftoverLocks() func(string, fs.FileInfo) bool {
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
			if start, _, exists := procStat(h.PID); exists && start == h.ProcStart && h.PID != os.Getpid() {
				return // still running (it cannot be, under our lock; be safe)
			}
			marker = h
			// An owner record the killed change wrote is the package's own.
			for _, l := range h.Locks {
				path := ownerPathFor(l.Path)
				if rec, ok := readOwner(m.cfg.fs, path); ok && rec.PID == h.PID && rec.ProcStart != nil && *rec.ProcStart == h.ProcStart {
					_ = m.cfg.fs.Remove(path)
				}
			}
			return
		}
	}
	return func(path string, _ fs.FileInfo) bool {
		once.Do(load)
		if marker == nil {
			return false
		}
		cur, ok := heldIdentity(m.cfg.fs, path)
		if !ok {
			return false
		}
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
// there is no lock file yet, so taking the locks would create files.
func (m *Manager) firstChange() bool {
	_, err := m.cfg.fs.Lstat(m.lockPath)
	return err != nil
}

// cliLockPaths lists the format's CLI locks for this creds dir, in the
// order the CLI takes them.
func (m *Manager) cliLockPaths() ([]cliLock, error) {
	var real string
	if m.cfg.format.needsRealDir() {
		r, err := m.cfg.fs.EvalSymlinks(m.dir)
		if err != nil {
			return nil, fmt.Errorf("credslots: resolve creds dir %s: %w", m.dir, err)
		}
		real = filepath.Clean(r)
	}
	return m.cfg.format.cliLocks(m.dir, real), nil
}
