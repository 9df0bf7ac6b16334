package credslots

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests in this file pin the system-call floor of each check: they count
// the operations made through the file-system seam, so that a regression
// fails here rather than in a benchmark nobody reads.

// countingFixture builds n captured slots sub000..., the live symlink on the
// last, and a manager whose seam records every operation from then on.
func countingFixture(t *testing.T, n int, opts ...Option) (*Manager, *faultFS, []string) {
	t.Helper()
	subs := make([]string, n)
	for i := range subs {
		subs[i] = fmt.Sprintf("sub%04d", i)
	}
	dir := t.TempDir()
	ffs := &faultFS{inner: disk.OS{}, failAt: -1}
	m, err := New(append([]Option{WithCredsDir(dir), WithSubscriptions(subs...), WithClock(fixedClock), withFS(ffs)}, opts...)...)
	require.NoError(t, err)
	for _, sub := range subs {
		writeSlot(t, m.SlotPath(sub), fresh, "rt-"+sub)
		writeSidecar(t, m, sub, "rt-"+sub)
	}
	_, err = m.SwitchTo(subs[n-1], "start")
	require.NoError(t, err)
	ffs.mu.Lock()
	ffs.log = nil
	ffs.mu.Unlock()
	return m, ffs, subs
}

// writeSidecar records refreshToken's fingerprint for sub, as a capture would.
func writeSidecar(t testing.TB, m *Manager, sub, refreshToken string) {
	t.Helper()
	writeFile(t, m.FingerprintPath(sub), []byte(fmt.Sprintf(`{"captured_at":"2026-01-01T00:00:00Z","refresh_token_sha256":%q,"slot":%q}`,
		hashBytes([]byte(refreshToken)), sub)))
}

// ops returns the operations recorded since the last call and forgets them.
func ops(ffs *faultFS) []string {
	ffs.mu.Lock()
	defer ffs.mu.Unlock()
	out := ffs.log
	ffs.log = nil
	return out
}

// reads counts the read operations per file name.
func reads(log []string) map[string]int {
	out := map[string]int{}
	for _, op := range log {
		if name, ok := strings.CutPrefix(op, "read "); ok {
			out[name]++
		}
	}
	return out
}

func TestActiveSubscriptionCalls(t *testing.T) {
	for _, n := range []int{3, 1000} {
		m, ffs, subs := countingFixture(t, n)
		sub, ok := m.ActiveSubscription()
		require.True(t, ok)
		assert.Equal(t, subs[n-1], sub)
		assert.Equal(t, []string{"readlink .credentials.json", "stat .credentials.json"}, ops(ffs), "%d slots: a readlink and one stat", n)
	}
}

func TestFreshnessAndIdentityCalls(t *testing.T) {
	m, ffs, _ := countingFixture(t, 3)
	ok, _ := m.SlotIsFresh("sub0001")
	require.True(t, ok)
	assert.Equal(t, []string{"read .credentials.json.sub0001"}, ops(ffs))
	info, err := m.DetectSlotIdentityDrift("sub0001")
	require.NoError(t, err)
	require.False(t, info.Drift)
	assert.Equal(t, []string{"read .credentials.json.sub0001", "read .credentials.json.sub0001.fingerprint.json"}, ops(ffs))

	plain, err := New(WithCredsDir(m.CredsDir()), WithSubscriptions("sub0001"), WithClock(fixedClock))
	require.NoError(t, err)
	// The race detector's instrumentation allocates; count without it (CI
	// runs the tests both ways: make test with -race, make calls without).
	if !raceEnabled {
		assert.LessOrEqual(t, testing.AllocsPerRun(50, func() { plain.SlotIsFresh("sub0001") }), 10.0)
		assert.LessOrEqual(t, testing.AllocsPerRun(50, func() { _, _ = plain.DetectSlotIdentityDrift("sub0001") }), 10.0)
	}
}

func TestDetectLiveSlotDriftCalls(t *testing.T) {
	for _, n := range []int{3, 100} {
		m, ffs, _ := countingFixture(t, n)
		info, err := m.DetectLiveSlotDrift()
		require.NoError(t, err)
		require.False(t, info.Drift)
		log := ops(ffs)
		assert.Len(t, log, n+1, "k+1 file reads and nothing else")
		for _, op := range log {
			assert.True(t, strings.HasPrefix(op, "read "), op)
		}
	}
}

func TestSwitchCalls(t *testing.T) {
	var counts []int
	for _, n := range []int{3, 1000} {
		m, ffs, subs := countingFixture(t, n)
		target := subs[0]
		for i := 0; i < 2; i++ { // warm up: the sweep marker is fresh after this
			_, err := m.SwitchTo(subs[1], "r")
			require.NoError(t, err)
			_, err = m.SwitchTo(subs[n-1], "r")
			require.NoError(t, err)
		}
		ops(ffs)
		_, err := m.SwitchTo(target, "r")
		require.NoError(t, err)
		log := ops(ffs)
		for name := range reads(log) {
			isSlot := strings.HasPrefix(name, DefaultLiveName+".sub") && !strings.HasSuffix(name, ".json")
			assert.False(t, isSlot && name != filepath.Base(m.SlotPath(target)), "%d slots: read %s, a slot other than the target", n, name)
		}
		assert.Equal(t, 1, reads(log)[filepath.Base(m.SlotPath(target))], "the target is read once")
		fsyncs := 0
		for _, op := range log {
			if strings.HasPrefix(op, "fsync ") || strings.HasPrefix(op, "sync ") {
				fsyncs++
			}
		}
		assert.Equal(t, 1, fsyncs, "one file fsync: the journal's intent")
		counts = append(counts, len(log))
	}
	assert.Equal(t, counts[0], counts[1], "a switch among 1000 slots makes as many calls as among 3")
}

func TestHealCalls(t *testing.T) {
	m, ffs, subs := countingFixture(t, 3)
	live := m.LivePath()
	writeFile(t, live+".cli", claudeDoc(fresh, "rt-refreshed"))
	require.NoError(t, disk.OS{}.Rename(live+".cli", live))
	ops(ffs)
	_, err := m.HealDriftTo(subs[2])
	require.NoError(t, err)
	for name, n := range reads(ops(ffs)) {
		assert.Equal(t, 1, n, "%s read %d times", name, n)
	}
}

func TestStatusCalls(t *testing.T) {
	var others []int
	for _, n := range []int{3, 100} {
		m, ffs, _ := countingFixture(t, n)
		st, err := m.Status()
		require.NoError(t, err)
		require.True(t, st.Healthy, st.Problems)
		log := ops(ffs)
		for name, k := range reads(log) {
			assert.Equal(t, 1, k, "%s read %d times", name, k)
		}
		assert.Len(t, reads(log), 2*n+3, "the live path, each slot, each sidecar, the state file and the journal (a failed capture)")
		others = append(others, len(log)-(2*n+3))
	}
	assert.Equal(t, others[0], others[1], "no call but the reads grows with the number of slots")
}

// lockPart splits a switch's log into what its locks cost: the operations
// before its first read (taking them) and after its last (releasing them).
func lockPart(log []string) (take, release []string) {
	first, last := -1, -1
	for i, op := range log {
		if strings.HasPrefix(op, "read ") {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return log, nil
	}
	return log[:first], log[last+1:]
}

// TestSwitchLockCalls pins the lock part of a switch with Claude Code's
// locks at its floor: the package's lock file taken with one flock, each
// lock directory made with a mkdir and read with one stat (its inode,
// mtime and birth time, for the owner record and the journal), the owner
// record created with one exclusive create, and on release one rmdir per
// directory and one removal of the record: no utimensat, no lstat before
// the swap or the removal while nobody could have taken a lock over, no
// failing unlink, and the creds dir's real path not resolved again.
func TestSwitchLockCalls(t *testing.T) {
	m, ffs, subs := countingFixture(t, 3)
	for i := 0; i < 2; i++ {
		_, err := m.SwitchTo(subs[1], "r")
		require.NoError(t, err)
		_, err = m.SwitchTo(subs[2], "r")
		require.NoError(t, err)
	}
	ops(ffs)
	_, err := m.SwitchTo(subs[0], "r")
	require.NoError(t, err)
	take, release := lockPart(ops(ffs))

	base := filepath.Base(m.dir)
	root := disk.RunningAsRoot()
	want := []string{"lstat .credslots", "lock lock"}
	if root {
		want = append(want, "stat .credslots") // the lock file's owner
	}
	want = append(want, "stat "+base, // the creds dir still the one resolved
		"lstat .claude.json", // where the .claude.json lock would go
		"mkdir .oauth_refresh.lock", "statlock .oauth_refresh.lock",
		"mkdir "+base+".lock", "statlock "+base+".lock")
	if root {
		want = append(want, "stat "+filepath.Base(filepath.Dir(m.dir))) // the legacy lock's owner
	}
	owner := ownerRecordPossible(m.dir)
	if owner {
		want = append(want, "createnew .oauth_refresh.lock.owner")
	}
	want = append(want, "mkdir .storage-write.lock", "statlock .storage-write.lock")
	assert.Equal(t, want, take)

	want = []string{"rmdir .storage-write.lock"}
	if owner {
		want = append(want, "remove .oauth_refresh.lock.owner")
	}
	want = append(want, "rmdir "+base+".lock", "rmdir .oauth_refresh.lock")
	assert.Equal(t, want, release)
}

// TestSwitchLockCallsWhenATakeoverCouldHappen: once a takeover could have
// happened (stale times scaled so far down that it could at once), each
// lock directory is looked at again before the swap and before its
// removal, so that a lock taken over is found and never removed.
func TestSwitchLockCallsWhenATakeoverCouldHappen(t *testing.T) {
	m, ffs, subs := countingFixture(t, 3, withStaleScale(1e-9))
	ops(ffs)
	_, err := m.SwitchTo(subs[0], "r")
	require.NoError(t, err)
	log := ops(ffs)
	exchange := -1
	for i, op := range log {
		if op == "exchange "+DefaultLiveName {
			exchange = i
		}
	}
	require.GreaterOrEqual(t, exchange, 0, "%v", log)
	base := filepath.Base(m.dir)
	for _, d := range []string{".oauth_refresh.lock", base + ".lock", ".storage-write.lock"} {
		before, after := 0, 0
		for i, op := range log {
			if op == "statlock "+d {
				if i < exchange {
					before++
				} else {
					after++
				}
			}
		}
		assert.GreaterOrEqual(t, before, 2, "%s: read once taken and once before the swap: %v", d, log)
		assert.GreaterOrEqual(t, after, 1, "%s: read before its removal: %v", d, log)
	}
}

// TestSwitchStartsNoGoroutine: the lock heartbeat is a timer that first
// fires once a change has lasted its beat (5 s), so a switch starts no
// goroutine.
func TestSwitchStartsNoGoroutine(t *testing.T) {
	m, _, subs := countingFixture(t, 3)
	before := runtime.NumGoroutine()
	during := -1
	m.cfg.onSwitch = func(string, string) { during = runtime.NumGoroutine() }
	for i := 0; i < 5; i++ {
		_, err := m.SwitchTo(subs[i%2], "r")
		require.NoError(t, err)
		assert.LessOrEqual(t, during, before, "goroutines while the locks are held")
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), before)
}
