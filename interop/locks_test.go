//go:build interop

package interop

// proper-lockfile 4.1.2 (the lock library inside Claude Code) against the
// locks a credslots Manager takes in a Claude Code creds dir (SPEC section 16):
// <D>/.oauth_refresh.lock, <realpath(D)>.lock and <D>/.storage-write.lock.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gptme/credslots"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// claudeLock names one of Claude Code's lock directories and its stale time.
type claudeLock struct {
	name  string
	path  func(dir string) string
	stale time.Duration
}

var (
	refreshLock = claudeLock{"oauth_refresh", func(d string) string { return filepath.Join(d, ".oauth_refresh.lock") }, 10 * time.Second}
	legacyLock  = claudeLock{"legacy", func(d string) string { return realpath(d) + ".lock" }, 10 * time.Second}
	storageLock = claudeLock{"storage_write", func(d string) string { return filepath.Join(d, ".storage-write.lock") }, 15 * time.Second}
)

func realpath(p string) string {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return p
	}
	return r
}

func staleFlag(l claudeLock) []string {
	return []string{"--stale", fmt.Sprint(l.stale.Milliseconds())}
}

// seedClaude writes two fresh Claude Code slots, alice and bob, with the live
// path linked to alice.
func seedClaude(t *testing.T, dir string) {
	t.Helper()
	exp := time.Now().Add(2 * time.Hour)
	writeFile0600(t, filepath.Join(dir, ".credentials.json.alice"), claudeCred("fake-alice-access", "fake-alice-refresh", exp))
	writeFile0600(t, filepath.Join(dir, ".credentials.json.bob"), claudeCred("fake-bob-access", "fake-bob-refresh", exp))
	require.NoError(t, os.Symlink(".credentials.json.alice", filepath.Join(dir, ".credentials.json")))
}

func newClaudeManager(t *testing.T, dir string, opts ...credslots.Option) *credslots.Manager {
	t.Helper()
	base := []credslots.Option{credslots.WithCredsDir(dir), credslots.WithSubscriptions("alice", "bob")}
	m, err := credslots.New(append(base, opts...)...)
	require.NoError(t, err)
	return m
}

func liveTarget(t *testing.T, dir, live string) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(dir, live))
	if err != nil {
		return "(not a symlink: " + err.Error() + ")"
	}
	return target
}

type switchOutcome struct {
	res  credslots.SwitchResult
	err  error
	at   time.Time
	took time.Duration
}

// switchAsync runs SwitchTo(sub) in a goroutine.
func switchAsync(m *credslots.Manager, sub string) <-chan switchOutcome {
	ch := make(chan switchOutcome, 1)
	start := time.Now()
	go func() {
		res, err := m.SwitchTo(sub, "interop test")
		ch <- switchOutcome{res: res, err: err, at: time.Now(), took: time.Since(start)}
	}()
	return ch
}

func awaitSwitch(t *testing.T, ch <-chan switchOutcome, timeout time.Duration) switchOutcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(timeout):
		t.Fatalf("interop: SwitchTo did not return within %s", timeout)
		return switchOutcome{}
	}
}

// (a)(i) node holds one of Claude Code's locks, heartbeating it; a switch
// waits for it, or gives up with ErrLockTimeout.
func TestNodeHoldsClaudeLock(t *testing.T) {
	requireInstalled(t)
	t.Parallel()
	cases := []struct {
		lock claudeLock
		hold time.Duration
	}{
		// Longer than the stale time: only proper-lockfile's heartbeat keeps it.
		{refreshLock, 12 * time.Second},
		{legacyLock, 4 * time.Second},
		{storageLock, 4 * time.Second},
	}
	for _, c := range cases {
		c := c
		t.Run(c.lock.name+"/waits", func(t *testing.T) {
			t.Parallel()
			dir, home := newCredsDir(t)
			seedClaude(t, dir)
			lock := c.lock.path(dir)
			holder := startNodeLock(t, home, "hold", dir, []string{lock}, append(staleFlag(c.lock), "--ms", fmt.Sprint(c.hold.Milliseconds()))...)
			acq := holder.next(t, 20*time.Second, "acquired", "elocked", "error")
			require.Equal(t, "acquired", acq.Event, "node could not take %s: %+v", lock, acq)

			m := newClaudeManager(t, dir, credslots.WithLockTimeout(c.hold+20*time.Second))
			out := switchAsync(m, "bob")
			rel := holder.next(t, c.hold+15*time.Second, "released", "compromised")
			require.Equal(t, "released", rel.Event, "credslots broke node's heartbeated lock: %+v", rel)
			o := awaitSwitch(t, out, 30*time.Second)
			require.NoError(t, o.err, "switch after node released %s", lock)
			assert.True(t, o.res.OK)
			// The switch could only finish once node had removed its lock dir.
			assert.False(t, o.at.Before(rel.time().Add(-250*time.Millisecond)),
				"switch returned at %s, before node released %s at %s", o.at.Format(time.StampMilli), lock, rel.time().Format(time.StampMilli))
			assert.Equal(t, ".credentials.json.bob", liveTarget(t, dir, ".credentials.json"))
			done := holder.next(t, 10*time.Second, "done")
			assert.False(t, done.Compromised, "node's lock was compromised while it held it")
			assert.Equal(t, 0, holder.p.wait(t, 10*time.Second), "lockholder stderr: %s", holder.p.stderr.String())
			assert.NoDirExists(t, lock, "credslots left the lock behind")
		})
		t.Run(c.lock.name+"/timeout", func(t *testing.T) {
			t.Parallel()
			dir, home := newCredsDir(t)
			seedClaude(t, dir)
			lock := c.lock.path(dir)
			holder := startNodeLock(t, home, "hold", dir, []string{lock}, append(staleFlag(c.lock), "--ms", "60000")...)
			acq := holder.next(t, 20*time.Second, "acquired", "elocked", "error")
			require.Equal(t, "acquired", acq.Event, "node could not take %s: %+v", lock, acq)

			m := newClaudeManager(t, dir, credslots.WithLockTimeout(1500*time.Millisecond))
			o := awaitSwitch(t, switchAsync(m, "bob"), 30*time.Second)
			require.Error(t, o.err, "switch while node holds %s", lock)
			assert.True(t, errors.Is(o.err, credslots.ErrLockTimeout), "want ErrLockTimeout, got %v", o.err)
			assert.False(t, o.res.OK)
			assert.Equal(t, ".credentials.json.alice", liveTarget(t, dir, ".credentials.json"))
			assert.DirExists(t, lock, "credslots removed node's lock")

			holder.release(t)
			done := holder.next(t, 15*time.Second, "done")
			assert.False(t, done.Compromised, "node's lock was compromised while credslots waited for it")
			assert.Equal(t, 0, holder.p.wait(t, 10*time.Second))
			assert.NoDirExists(t, lock)
		})
	}
}

// (a)(ii) credslots holds its locks for longer than the stale time (its
// on-switch hook runs under them); proper-lockfile must find them held the
// whole time, so credslots must heartbeat their mtime; afterwards node gets them.
func TestCredslotsHoldsClaudeLocks(t *testing.T) {
	requireInstalled(t)
	t.Parallel()
	dir, home := newCredsDir(t)
	seedClaude(t, dir)
	const hookSleep = 12 * time.Second
	entered := make(chan time.Time, 1)
	m := newClaudeManager(t, dir, credslots.WithOnSwitch(func(sub, reason string) {
		entered <- time.Now()
		time.Sleep(hookSleep)
	}))
	out := switchAsync(m, "bob")
	var hookStart time.Time
	select {
	case hookStart = <-entered:
	case o := <-out:
		t.Fatalf("switch returned before its hook ran: %+v, %v", o.res, o.err)
	case <-time.After(30 * time.Second):
		t.Fatal("on-switch hook not called within 30s")
	}
	locks := []string{refreshLock.path(dir), legacyLock.path(dir)}
	for _, l := range locks {
		assert.DirExists(t, l, "credslots does not hold Claude Code's lock while its hook runs")
	}
	poller := startNodeLock(t, home, "poll", dir, locks, "--stale", "10000", "--interval", "500", "--max-ms", "45000")
	o := awaitSwitch(t, out, hookSleep+30*time.Second)
	require.NoError(t, o.err)
	assert.Equal(t, ".credentials.json.bob", liveTarget(t, dir, ".credentials.json"))
	code := poller.p.wait(t, 30*time.Second)
	assert.Equal(t, 0, code, "node never took the locks after credslots released them\n%s", poller.p.stdout.String())

	late := hookStart.Add(refreshLock.stale + time.Second) // past the stale time: only a heartbeat keeps the lock
	for _, l := range locks {
		var attempts, lateELocked int
		var acquired *lockEvent
		for _, ev := range poller.seen() {
			if ev.Event != "attempt" || ev.Lock != l {
				continue
			}
			attempts++
			switch {
			case ev.Result == "acquired":
				ev := ev
				acquired = &ev
			case ev.time().Before(o.at.Add(-100 * time.Millisecond)):
				assert.Equal(t, "elocked", ev.Result, "%s at %s while credslots held it: %+v", l, ev.time().Format(time.StampMilli), ev)
				if ev.time().After(late) {
					lateELocked++
				}
			}
			if ev.Result == "acquired" {
				assert.False(t, ev.time().Before(o.at.Add(-100*time.Millisecond)),
					"node acquired %s at %s, before credslots released it (%s)", l, ev.time().Format(time.StampMilli), o.at.Format(time.StampMilli))
			}
		}
		assert.Greater(t, attempts, 10, "too few attempts on %s", l)
		assert.Greater(t, lateELocked, 0, "no attempt on %s after the stale time while credslots held it", l)
		if assert.NotNil(t, acquired, "node never acquired %s", l) {
			assert.True(t, acquired.time().Before(o.at.Add(5*time.Second)), "node took %s only at %s, credslots released at %s", l, acquired.time().Format(time.StampMilli), o.at.Format(time.StampMilli))
		}
	}
}

// (a)(iii) an abandoned lock dir (its holder killed, mtime 61 s old: past
// the longest stale time of the supported range) is taken over.
func TestAbandonedNodeLockTakenOverByCredslots(t *testing.T) {
	requireInstalled(t)
	t.Parallel()
	dir, home := newCredsDir(t)
	seedClaude(t, dir)
	all := []claudeLock{refreshLock, legacyLock, storageLock}
	var paths []string
	for _, l := range all {
		paths = append(paths, l.path(dir))
	}
	// A real proper-lockfile holder, killed with SIGKILL: its exit handler
	// never runs, so the directories stay behind.
	holder := startNodeLock(t, home, "hold", dir, paths, "--ms", "60000")
	for range paths {
		ev := holder.next(t, 20*time.Second, "acquired", "elocked", "error")
		require.Equal(t, "acquired", ev.Event, "%+v", ev)
	}
	holder.p.kill()
	holder.p.wait(t, 10*time.Second)
	old := time.Now().Add(-61 * time.Second)
	for _, p := range paths {
		require.DirExists(t, p)
		require.NoError(t, os.Chtimes(p, old, old))
	}
	m := newClaudeManager(t, dir, credslots.WithLockTimeout(8*time.Second))
	o := awaitSwitch(t, switchAsync(m, "bob"), 30*time.Second)
	require.NoError(t, o.err, "switch over abandoned locks")
	assert.Less(t, o.took, 5*time.Second, "taking over abandoned locks took %s", o.took)
	assert.Equal(t, ".credentials.json.bob", liveTarget(t, dir, ".credentials.json"))
	for _, p := range paths {
		assert.NoDirExists(t, p, "credslots left the lock it took over behind")
	}
}

// (a)(iii) a credslots process killed while it holds the locks leaves lock
// dirs that proper-lockfile treats as held until they go stale, then takes over.
func TestAbandonedCredslotsLockTakenOverByNode(t *testing.T) {
	requireInstalled(t)
	t.Parallel()
	dir, home := newCredsDir(t)
	seedClaude(t, dir)
	self, err := os.Executable()
	require.NoError(t, err)
	helper := startProc(t, procOpts{
		env:         append(childEnv(home), helperEnv+"=hold-switch", "CREDSLOTS_INTEROP_DIR="+dir),
		description: "credslots helper (hold-switch)",
	}, self, "-test.run=^$")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(helper.stdout.String(), "entered") {
		if !helper.running() || time.Now().After(deadline) {
			t.Fatalf("helper never reached its on-switch hook\nstdout: %s\nstderr: %s", helper.stdout.String(), helper.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	locks := []string{refreshLock.path(dir), legacyLock.path(dir)}
	for _, l := range locks {
		require.DirExists(t, l, "credslots does not hold Claude Code's lock while its hook runs")
	}
	// Let at least one heartbeat happen, then kill it mid-hold.
	time.Sleep(6 * time.Second)
	helper.kill()
	helper.wait(t, 10*time.Second)
	killed := time.Now()
	for _, l := range locks {
		require.DirExists(t, l, "a killed credslots cannot have removed its lock")
	}
	poller := startNodeLock(t, home, "poll", dir, locks, "--stale", "10000", "--interval", "500", "--max-ms", "30000")
	assert.Equal(t, 0, poller.p.wait(t, 40*time.Second), "node never took over the abandoned credslots locks\n%s", poller.p.stdout.String())
	for _, l := range locks {
		var first, acquired *lockEvent
		for _, ev := range poller.seen() {
			if ev.Event != "attempt" || ev.Lock != l {
				continue
			}
			ev := ev
			if first == nil {
				first = &ev
			}
			if ev.Result == "acquired" {
				acquired = &ev
			}
		}
		require.NotNil(t, first)
		// The heartbeat was at most stale/2 ago: the lock is not stale yet.
		assert.Equal(t, "elocked", first.Result, "%s was not held right after the kill (heartbeat missing?): %+v", l, first)
		if assert.NotNil(t, acquired, "node never acquired %s", l) {
			assert.True(t, acquired.time().Before(killed.Add(refreshLock.stale+3*time.Second)),
				"node took over %s only %s after the kill", l, acquired.time().Sub(killed))
		}
	}
}

// (a)(iv) node takes over a lock while credslots still holds it (its mtime
// aged, or the dir removed); credslots must neither touch nor remove node's lock.
func TestCredslotsKeepsHandsOffTakenOverLock(t *testing.T) {
	requireInstalled(t)
	t.Parallel()
	for _, l := range []claudeLock{refreshLock, legacyLock} {
		for _, how := range []string{"stale", "removed"} {
			l, how := l, how
			t.Run(l.name+"/"+how, func(t *testing.T) {
				t.Parallel()
				dir, home := newCredsDir(t)
				seedClaude(t, dir)
				lock := l.path(dir)
				inHook := make(chan struct{}, 1)
				proceed := make(chan struct{})
				var once sync.Once
				letGo := func() { once.Do(func() { close(proceed) }) }
				t.Cleanup(letGo)
				m := newClaudeManager(t, dir, credslots.WithOnSwitch(func(sub, reason string) {
					inHook <- struct{}{}
					select {
					case <-proceed:
					case <-time.After(90 * time.Second):
					}
				}))
				out := switchAsync(m, "bob")
				select {
				case <-inHook:
				case o := <-out:
					t.Fatalf("switch returned before its hook ran: %+v, %v", o.res, o.err)
				case <-time.After(30 * time.Second):
					t.Fatal("on-switch hook not called within 30s")
				}
				require.DirExists(t, lock, "credslots does not hold %s while its hook runs", lock)
				switch how {
				case "stale": // credslots looks stalled: proper-lockfile removes and retakes it
					old := time.Now().Add(-30 * time.Second)
					require.NoError(t, os.Chtimes(lock, old, old))
				case "removed": // the dir vanished (someone removed it); node retakes it
					require.NoError(t, os.Remove(lock))
				}
				taker := startNodeLock(t, home, "hold", dir, []string{lock}, "--stale", "10000", "--ms", "60000")
				ev := taker.next(t, 20*time.Second, "acquired", "elocked", "error")
				require.Equal(t, "acquired", ev.Event, "node did not take over %s: %+v", lock, ev)
				// Hold on long enough for a credslots heartbeat to come due.
				time.Sleep(6 * time.Second)
				letGo()
				o := awaitSwitch(t, out, 60*time.Second)
				t.Logf("switch result: ok=%v reason=%q err=%v", o.res.OK, o.res.Reason, o.err)
				assert.DirExists(t, lock, "credslots removed the lock node had taken over")
				// node checks its mtime every 5 s; give it two checks.
				time.Sleep(6 * time.Second)
				for _, ev := range taker.seen() {
					assert.NotEqual(t, "compromised", ev.Event, "credslots touched node's lock: %+v", ev)
				}
				taker.release(t)
				done := taker.next(t, 15*time.Second, "done")
				assert.False(t, done.Compromised, "node's lock was compromised")
				assert.Equal(t, 0, taker.p.wait(t, 10*time.Second))
				assert.NoDirExists(t, lock)
			})
		}
	}
}

// TestLocksOffControl is the control for the tests above: with
// WithCLILocks(false) proper-lockfile takes Claude Code's refresh lock while
// a switch is in its hook, so those tests do observe the locks.
func TestLocksOffControl(t *testing.T) {
	requireInstalled(t)
	t.Parallel()
	dir, home := newCredsDir(t)
	seedClaude(t, dir)
	inHook := make(chan struct{}, 1)
	proceed := make(chan struct{})
	var once sync.Once
	letGo := func() { once.Do(func() { close(proceed) }) }
	t.Cleanup(letGo)
	m := newClaudeManager(t, dir, credslots.WithCLILocks(false), credslots.WithOnSwitch(func(sub, reason string) {
		inHook <- struct{}{}
		select {
		case <-proceed:
		case <-time.After(60 * time.Second):
		}
	}))
	out := switchAsync(m, "bob")
	select {
	case <-inHook:
	case <-time.After(30 * time.Second):
		t.Fatal("on-switch hook not called within 30s")
	}
	ev := nodeTry(t, home, dir, refreshLock.path(dir), refreshLock.stale)
	letGo()
	assert.Equal(t, "acquired", ev.Event, "%+v", ev)
	o := awaitSwitch(t, out, 30*time.Second)
	require.NoError(t, o.err)
}

// ---- helper process: a credslots Manager that gets killed mid-switch ----

const helperEnv = "CREDSLOTS_INTEROP_HELPER"

func runHelper(mode string) int {
	switch mode {
	case "hold-switch":
		dir := os.Getenv("CREDSLOTS_INTEROP_DIR")
		m, err := credslots.New(credslots.WithCredsDir(dir), credslots.WithSubscriptions("alice", "bob"),
			credslots.WithOnSwitch(func(sub, reason string) {
				fmt.Println("entered")
				time.Sleep(10 * time.Minute)
			}))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if _, err := m.SwitchTo("bob", "interop helper"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		return 2
	}
}
