package credslots

// This file holds the locks a change is made under: the package's own file
// lock in the private directory, and the locks the format's CLI takes around
// a token refresh, taken the way that CLI takes them.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// lockPollInterval bounds the wait between attempts to take a busy lock.
const lockPollInterval = 25 * time.Millisecond

// acquire retries try until it succeeds, fails, the deadline passes, or
// ctx ends (an error wrapping ctx.Err()).
func acquire(ctx context.Context, what string, deadline time.Time, try func() (bool, error)) error {
	start := time.Now()
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
			return fmt.Errorf("credslots: %s still held after %s: %w",
				what, time.Since(start).Round(time.Millisecond), ErrLockTimeout)
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
// mode 0600 if needed, and waits until deadline.
func lockFile(ctx context.Context, fsys fileSystem, path string, deadline time.Time) (func(), error) {
	var unlock func() error
	err := acquire(ctx, "lock "+path, deadline, func() (bool, error) {
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
	// stale is the age after which a lock directory is abandoned; zero for
	// a flock, which its holder's death releases by itself.
	stale time.Duration
}

// dirLock is a held lock directory, kept the way proper-lockfile (the lock
// library of Claude Code) keeps one: created with mkdir, its mtime touched
// every half stale time while held so that nobody takes it over, and removed
// on release only if its mtime is still the one this holder set.
type dirLock struct {
	fsys  fileSystem
	path  string
	stale time.Duration

	mu    sync.Mutex
	mtime time.Time // as read back after this holder last set it
	lost  bool      // another process took the lock over

	stop chan struct{}
	done chan struct{}
}

// takeDirLock creates the lock directory path, waiting until deadline while
// another holder keeps it fresh, and taking it over once its mtime is older
// than stale, as proper-lockfile does.
func takeDirLock(ctx context.Context, fsys fileSystem, path string, stale time.Duration, deadline time.Time) (*dirLock, error) {
	l := &dirLock{fsys: fsys, path: path, stale: stale}
	err := acquire(ctx, "CLI lock "+path, deadline, func() (bool, error) {
		for attempt := 0; attempt < 2; attempt++ {
			err := fsys.Mkdir(path, 0o700)
			if err == nil {
				if terr := l.touch(); terr != nil {
					_ = fsys.Remove(path)
					return false, terr
				}
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
			case time.Since(fi.ModTime()) <= stale:
				return false, nil // held, and its holder is alive
			}
			// Abandoned: its holder stopped refreshing it. Look once more
			// right before removing it, so that a lock another process has
			// just taken over is left alone; what remains is the window
			// proper-lockfile itself has between its stat and its rmdir.
			if again, err := fsys.Lstat(path); err != nil || !os.SameFile(fi, again) || !again.ModTime().Equal(fi.ModTime()) {
				continue
			}
			if err := fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return false, err
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.heartbeat()
	return l, nil
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
	tick := time.NewTicker(l.stale / 2)
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
	fsys := m.cfg.fs
	if err := m.ensurePrivateDir(m.private); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(m.cfg.lockTimeout)
	unlock, err := lockFile(ctx, fsys, m.lockPath, deadline)
	if err != nil {
		return nil, err
	}
	m.own(m.lockPath)
	mu := &mutation{release: []func(){unlock}}
	if m.cfg.cliLocks {
		locks, err := m.cliLockPaths()
		if err != nil {
			mu.end()
			return nil, err
		}
		for _, cl := range locks {
			if err := mu.take(ctx, fsys, cl, m.cfg.staleScale, deadline); err != nil {
				mu.end()
				return nil, err
			}
			m.own(cl.path)
		}
	}
	return mu, nil
}

// firstChange reports whether no change was ever made in this creds dir:
// there is no lock file yet, so taking the locks would create files.
func (m *Manager) firstChange() bool {
	_, err := m.cfg.fs.Lstat(m.lockPath)
	return err != nil
}

// take acquires one CLI lock and adds it to the mutation.
func (mu *mutation) take(ctx context.Context, fsys fileSystem, cl cliLock, scale float64, deadline time.Time) error {
	if cl.stale == 0 {
		unlock, err := lockFile(ctx, fsys, cl.path, deadline)
		if err != nil {
			return err
		}
		mu.release = append(mu.release, unlock)
		return nil
	}
	l, err := takeDirLock(ctx, fsys, cl.path, time.Duration(float64(cl.stale)*scale), deadline)
	if err != nil {
		return err
	}
	mu.dirs = append(mu.dirs, l)
	mu.release = append(mu.release, l.release)
	return nil
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
