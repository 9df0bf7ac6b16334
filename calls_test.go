package credslots

import (
	"fmt"
	"os"
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
		// The reason string; the read goes into a pooled buffer (the half
		// is room for the pool refilling itself after a GC).
		assert.LessOrEqual(t, testing.AllocsPerRun(50, func() { plain.SlotIsFresh("sub0001") }), 1.5)
		// The two fingerprints' strings.
		assert.LessOrEqual(t, testing.AllocsPerRun(50, func() { _, _ = plain.DetectSlotIdentityDrift("sub0001") }), 2.5)
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

func TestActiveSubscriptionAllocs(t *testing.T) {
	for _, n := range []int{3, 1000} {
		m, _, subs := countingFixture(t, n)
		plain, err := New(WithCredsDir(m.CredsDir()), WithSubscriptions(subs...), WithClock(fixedClock))
		require.NoError(t, err)
		sub, ok := plain.ActiveSubscription()
		require.True(t, ok)
		require.Equal(t, subs[n-1], sub)
		// The C strings of the readlink's and the stat's path, as the
		// floor's unix.Readlink and unix.Stat make them. Counted without
		// the race detector, whose instrumentation allocates.
		if !raceEnabled {
			assert.LessOrEqual(t, testing.AllocsPerRun(50, func() { plain.ActiveSubscription() }), 2.5, "%d slots", n)
		}
	}
}

// A link that names its slot another way than a switch writes it takes
// the slower path (a stat of the live path and of the slots), with the
// same answers.
func TestActiveSubscriptionLinkSpelledOtherwise(t *testing.T) {
	m, ffs, subs := countingFixture(t, 3)
	for _, target := range []string{"./" + filepath.Base(m.SlotPath(subs[1])), m.SlotPath(subs[1])} {
		require.NoError(t, os.Remove(m.LivePath()))
		require.NoError(t, os.Symlink(target, m.LivePath()))
		ops(ffs)
		sub, ok := m.ActiveSubscription()
		assert.True(t, ok, target)
		assert.Equal(t, subs[1], sub, target)
		assert.Equal(t, []string{"readlink .credentials.json", "stat .credentials.json"}, ops(ffs), target)
	}
	// Through another symlink: the files are compared.
	other := filepath.Join(m.CredsDir(), "elsewhere")
	require.NoError(t, os.Symlink(filepath.Base(m.SlotPath(subs[2])), other))
	require.NoError(t, os.Remove(m.LivePath()))
	require.NoError(t, os.Symlink("elsewhere", m.LivePath()))
	sub, ok := m.ActiveSubscription()
	assert.True(t, ok)
	assert.Equal(t, subs[2], sub)
}

func TestDetectLiveSlotDriftAllocs(t *testing.T) {
	var allocs []float64
	for _, n := range []int{3, 100} {
		m, _, subs := countingFixture(t, n)
		plain, err := New(WithCredsDir(m.CredsDir()), WithSubscriptions(subs...), WithClock(fixedClock))
		require.NoError(t, err)
		info, err := plain.DetectLiveSlotDrift()
		require.NoError(t, err)
		require.False(t, info.Drift)
		require.Len(t, info.SlotHashes, n)
		allocs = append(allocs, testing.AllocsPerRun(20, func() { _, _ = plain.DetectLiveSlotDrift() }))
	}
	// The result, its map and one string holding every hash: the reads
	// share one pooled buffer, and each open's path is made on the stack
	// (on Linux). Counted without the race detector, whose
	// instrumentation allocates.
	if !raceEnabled && runtime.GOOS == "linux" {
		assert.LessOrEqual(t, allocs[0], 5.5, "3 slots")
		assert.LessOrEqual(t, allocs[1], 9.5, "100 slots: only the map grows")
	}
}
