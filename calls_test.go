package credslots

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/clilock"
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

// lockPart splits a switch's log into what its locks cost: the operations
// before its lease probe or first read (taking them) and after the journal's last append,
// its done record (releasing them).
func lockPart(log []string) (take, release []string) {
	first, last := -1, -1
	for i, op := range log {
		if (strings.HasPrefix(op, "read ") || op == "lstat "+leasesDirName) && first < 0 {
			first = i
		}
		if op == "append "+journalName {
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
// record created with one exclusive create, and on release one stat and
// one rmdir per directory and the record read back before its removal: no
// utimensat, no lstat and statx pairs, no failing unlink, and the creds
// dir's real path not resolved again.
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
	// As root, the lock file's owner is the private directory's, which
	// its lstat before the lock already said.
	want := []string{"lstat .credslots", "lock lock"}
	want = append(want, "lstat "+base, // the creds dir still its own real path
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

	want = []string{"statlock .storage-write.lock", "rmdir .storage-write.lock"}
	if owner {
		want = append(want, "read .oauth_refresh.lock.owner", "remove .oauth_refresh.lock.owner")
	}
	want = append(want, "statlock "+base+".lock", "rmdir "+base+".lock", "statlock .oauth_refresh.lock", "rmdir .oauth_refresh.lock")
	assert.Equal(t, want, release)
}

// TestSwitchLooksAtEachLockBeforeTheSwapAndItsRemoval: each lock directory
// is looked at again before the swap and before its removal, however
// little time has passed, so that a lock lost (taken over once stale, or
// removed by hand or by a paused CLI and made again by another party at
// once) is found and never removed.
func TestSwitchLooksAtEachLockBeforeTheSwapAndItsRemoval(t *testing.T) {
	m, ffs, subs := countingFixture(t, 3)
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

// switchPartOps is the part of a switch's seam log that is not the locks':
// the lease probe, the reads of the checks, the journal, the swap and the
// directory sync, the account splice's look at .claude.json, the placed
// symlink's lstat. The temporary symlink's random name is shown as TMP.
func switchPartOps(log []string) []string {
	var out []string
	swapped := false // .claude.json is the locks' before the swap
	for _, op := range log {
		verb, name, _ := strings.Cut(op, " ")
		swapped = swapped || verb == "exchange"
		switch {
		case strings.Contains(name, tmpLinkMarker):
			out = append(out, verb+" TMP")
		case verb == "syncdir", name == leasesDirName, name == journalName, name == claudeJSONName && swapped,
			strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, "."), // state, lease records
			strings.HasPrefix(name, DefaultLiveName) && !strings.HasSuffix(name, lockSuffix):
			out = append(out, op)
		}
	}
	return out
}

// TestSwitchPartCalls pins the non-lock part of a switch at its floor: one
// read of the target slot, the state file, the sidecar and the live entry;
// the journal's intent appended and fsynced through one open (no stat before
// it); the symlink exchanged in and what came out proven a symlink by one
// readlink; one directory sync; the done record. No lease file is opened
// while the leases directory does not exist.
func TestSwitchPartCalls(t *testing.T) {
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
	log := ops(ffs)
	slot, side := filepath.Base(m.SlotPath(subs[0])), filepath.Base(m.FingerprintPath(subs[0]))
	assert.Equal(t, []string{
		"lstat " + leasesDirName,
		"read " + slot,
		"read state.json",
		"read " + side,
		"read " + DefaultLiveName,
		"readlink " + DefaultLiveName,
		"append " + journalName,
		"fsync " + journalName,
		"symlink TMP",
		"exchange " + DefaultLiveName,
		"readlink TMP",
		"syncdir " + filepath.Base(m.CredsDir()),
		"lstat " + DefaultLiveName,
		"append " + journalName,
	}, switchPartOps(log))
	assert.Equal(t, 1, reads(log)[side], "the sidecar is read once per switch")
	assert.Equal(t, 1, reads(log)[slot], "the target slot is read once")
	assert.Zero(t, reads(log)[journalName], "a switch never reads the journal (below its rotation size)")

	// Forced (no identity check): the sidecar is still read once.
	_, err = m.SwitchTo(subs[1], "r", Force())
	require.NoError(t, err)
	assert.Equal(t, 1, reads(ops(ffs))[filepath.Base(m.FingerprintPath(subs[1]))], "forced: the sidecar is read once")
}

// TestSwitchPartCallsWithLeases: once the leases directory exists, the
// lease record and lock are probed as before (a lease refuses the switch).
func TestSwitchPartCallsWithLeases(t *testing.T) {
	m, ffs, subs := countingFixture(t, 3)
	require.NoError(t, os.MkdirAll(m.leasesDir(), 0o700))
	ops(ffs)
	_, err := m.SwitchTo(subs[0], "r")
	require.NoError(t, err)
	log := switchPartOps(ops(ffs))
	require.GreaterOrEqual(t, len(log), 2)
	assert.Equal(t, []string{"lstat " + leasesDirName, "read " + subs[0] + ".json"}, log[:2], "the record is read when leases exist")
}

// TestSwitchSettleReadsAFileTakenOut: a regular file the exchange took out
// (a CLI's write that landed between the check and the swap) is read and
// compared in full, and kept.
func TestSwitchSettleReadsAFileTakenOut(t *testing.T) {
	m, ffs, subs := countingFixture(t, 3)
	live := m.LivePath()
	ffs.before = func(op, name string) {
		if op == "exchange" && filepath.Base(name) == DefaultLiveName {
			ffs.before = nil
			writeFile(t, live+".cli", claudeDoc(fresh, "rt-written-meanwhile"))
			require.NoError(t, disk.OS{}.Rename(live+".cli", live))
		}
	}
	ops(ffs)
	_, err := m.SwitchTo(subs[0], "r")
	require.ErrorIs(t, err, ErrLiveChanged)
	log := switchPartOps(ops(ffs))
	assert.Contains(t, log, "readlink TMP")
	assert.Contains(t, log, "read TMP", "the file taken out is read")
	data, rerr := os.ReadFile(live)
	require.NoError(t, rerr)
	assert.Equal(t, "rt-written-meanwhile", refreshTokenOf(data), "the newer file is back in place")
}

// TestSwitchPartAllocs pins the allocations of the journal's records, of
// the swap, of a whole switch and of the lock stat a switch makes nine of.
func TestSwitchPartAllocs(t *testing.T) {
	dir := t.TempDir()
	m, err := New(WithCredsDir(dir), WithSubscriptions("a", "b"), WithClock(fixedClock))
	require.NoError(t, err)
	for _, sub := range []string{"a", "b"} {
		writeSlot(t, m.SlotPath(sub), fresh, "rt-"+sub)
		writeSidecar(t, m, sub, "rt-"+sub)
	}
	_, err = m.SwitchTo("a", "start")
	require.NoError(t, err)
	e := JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseDone, ID: "0123456789abcdef", Sub: "b", From: "a", Reason: "r",
		Holder: &LockHolder{PID: 1, ProcStart: "2", Locks: []HeldLock{{Path: "/x/.lock", Inode: 3}}}}
	assertAllocs(t, testing.AllocsPerRun(50, func() { require.NoError(t, m.record(e)) }), 3.0, "a journal record")
	live, err := inspect(m.cfg.fs, m.live)
	require.NoError(t, err)
	targets := []string{m.symlinkTarget("b"), m.symlinkTarget("a")}
	i := 0
	assertAllocs(t, testing.AllocsPerRun(50, func() {
		i++
		require.NoError(t, swapInSymlink(m.cfg.fs, m.live, targets[i%2], live, m.rescue))
	}), 13.0, "a swap")
	subs := []string{"b", "a"}
	assertAllocs(t, testing.AllocsPerRun(20, func() {
		i++
		_, err := m.SwitchTo(subs[i%2], "r")
		require.NoError(t, err)
	}), 110.0, "a switch (its locks' allocations included, the owner record read back; 264, 147, 123, then 114 before)")
	assertAllocs(t, testing.AllocsPerRun(50, func() {
		_, err := disk.StatLock(dir)
		require.NoError(t, err)
	}), 1.0, "a lock's stat: its path's copy for the system call, its buffer on the stack (2 before)")
	plain, err := New(WithCredsDir(dir), WithSubscriptions("a", "b"), WithClock(fixedClock), WithCLILocks(false))
	require.NoError(t, err)
	assertAllocs(t, testing.AllocsPerRun(20, func() {
		i++
		_, err := plain.SwitchTo(subs[i%2], "r")
		require.NoError(t, err)
	}), 85.0, "a switch without the CLI's locks (126, then 87 before)")
}

// assertAllocs asserts an allocation count at most max, without the race
// detector, whose instrumentation allocates (CI runs the tests both ways).
func assertAllocs(t *testing.T, got, max float64, what string) {
	t.Helper()
	if !raceEnabled {
		assert.LessOrEqual(t, got, max, what)
	}
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
	// The result and its map: the reads share one pooled buffer, each
	// open's path is made on the stack (on Linux), and the hash of bytes
	// hashed before is the string made then (see hashOf). Counted without
	// the race detector, whose instrumentation allocates.
	if !raceEnabled && runtime.GOOS == "linux" {
		assert.LessOrEqual(t, allocs[0], 3.5, "3 slots")
		assert.LessOrEqual(t, allocs[1], 5.5, "100 slots: only the map grows")
	}
}

// recordCountFS counts how the journal is appended to: by name
// (AppendRecord), opened and kept (OpenRecord), or through a kept file.
type recordCountFS struct {
	disk.FS
	mu                   sync.Mutex
	byName, opened, kept int
	keptDurable          int
}

func (r *recordCountFS) AppendRecord(name string, data []byte, durable, create bool) (int64, error) {
	r.mu.Lock()
	r.byName++
	r.mu.Unlock()
	return r.FS.AppendRecord(name, data, durable, create)
}

func (r *recordCountFS) OpenRecord(name string, data []byte, durable, create bool) (int64, disk.RecordFile, error) {
	r.mu.Lock()
	r.opened++
	r.mu.Unlock()
	size, f, err := r.FS.OpenRecord(name, data, durable, create)
	if err != nil {
		return size, nil, err
	}
	return size, &countedRecord{RecordFile: f, r: r}, nil
}

type countedRecord struct {
	disk.RecordFile
	r *recordCountFS
}

func (c *countedRecord) Append(data []byte, durable bool) error {
	c.r.mu.Lock()
	c.r.kept++
	if durable {
		c.r.keptDurable++
	}
	c.r.mu.Unlock()
	return c.RecordFile.Append(data, durable)
}

func (r *recordCountFS) counts() (byName, opened, kept, keptDurable int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	byName, opened, kept, keptDurable = r.byName, r.opened, r.kept, r.keptDurable
	r.byName, r.opened, r.kept, r.keptDurable = 0, 0, 0, 0
	return
}

// recordFixture is a Manager of subs a and b, switched to a once, whose
// journal appends are counted.
func recordFixture(t *testing.T, opts ...Option) (*Manager, *recordCountFS) {
	t.Helper()
	rfs := &recordCountFS{FS: disk.OS{}}
	m, err := New(append([]Option{WithCredsDir(t.TempDir()), WithSubscriptions("a", "b"), WithClock(fixedClock), withFS(rfs)}, opts...)...)
	require.NoError(t, err)
	for _, sub := range []string{"a", "b"} {
		writeSlot(t, m.SlotPath(sub), fresh, "rt-"+sub)
		writeSidecar(t, m, sub, "rt-"+sub)
	}
	_, err = m.SwitchTo("a", "start")
	require.NoError(t, err)
	rfs.counts()
	return m, rfs
}

// TestSwitchKeepsTheJournalOpenFromIntentToDone: a switch opens the
// journal once, for its intent (fsynced through that descriptor), and
// appends its done record through the same descriptor with one write: no
// second open, fstat or look at the last byte. The records are whole lines,
// paired by their id, and the done record does not repeat the holder.
func TestSwitchKeepsTheJournalOpenFromIntentToDone(t *testing.T) {
	m, rfs := recordFixture(t)
	_, err := m.SwitchTo("b", "r")
	require.NoError(t, err)
	byName, opened, kept, keptDurable := rfs.counts()
	assert.Equal(t, 0, byName, "no record appended by name")
	assert.Equal(t, 1, opened, "the journal opened once, for the intent")
	assert.Equal(t, 1, kept, "the done record through the kept descriptor")
	assert.Equal(t, 0, keptDurable, "the done record is not fsynced: two fsyncs a switch")

	entries, err := m.Journal()
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(entries), 2)
	intent, done := entries[len(entries)-2], entries[len(entries)-1]
	assert.Equal(t, phaseIntent, intent.Phase)
	assert.Equal(t, phaseDone, done.Phase)
	assert.Equal(t, intent.ID, done.ID)
	assert.Nil(t, done.Holder, "the outcome does not repeat the intent's holder")
	data, err := os.ReadFile(m.journalPath())
	require.NoError(t, err)
	assert.True(t, bytes.HasSuffix(data, []byte("}\n")), "the journal ends on a whole line")
	sub, ok := m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "b", sub)
}

// TestSwitchAfterATornJournalLine: a line a crash tore is ended before the
// intent, by the look at the last byte the intent's open makes; the done
// record, written through the kept descriptor without that look, follows
// the intent on a line of its own.
func TestSwitchAfterATornJournalLine(t *testing.T) {
	m, _ := recordFixture(t)
	f, err := os.OpenFile(m.journalPath(), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"time":"2026-01-01T00:00:00Z","op":"swi`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	_, err = m.SwitchTo("b", "r")
	require.NoError(t, err)
	data, err := os.ReadFile(m.journalPath())
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	require.GreaterOrEqual(t, len(lines), 3)
	assert.Equal(t, `{"time":"2026-01-01T00:00:00Z","op":"swi`, lines[len(lines)-3], "the torn line stays alone")
	intent, ok := parseJournalLine([]byte(lines[len(lines)-2]))
	require.True(t, ok, "%s", lines[len(lines)-2])
	done, ok := parseJournalLine([]byte(lines[len(lines)-1]))
	require.True(t, ok, "%s", lines[len(lines)-1])
	assertSwitchedTo(t, m, "b", intent, done)
}

// assertSwitchedTo checks that intent and done are one change's records,
// and that the journal makes sub the last active.
func assertSwitchedTo(t *testing.T, m *Manager, sub string, intent, done JournalEntry) {
	t.Helper()
	assert.Equal(t, phaseIntent, intent.Phase)
	assert.Equal(t, phaseDone, done.Phase)
	assert.Equal(t, intent.ID, done.ID)
	last, ok := m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, sub, last)
}

// TestSwitchWhoseIntentRotatesTheJournal: an intent that takes the journal
// past its rotation size rotates it, which replaces the file: the kept
// descriptor is closed first, and the done record goes into the rotated
// journal by its name (written through the old descriptor it would be lost
// with the replaced file).
func TestSwitchWhoseIntentRotatesTheJournal(t *testing.T) {
	m, rfs := recordFixture(t)
	var pad bytes.Buffer
	filler := JournalEntry{Time: testNow, Op: opCapture, Phase: phaseDone, Sub: "a", Reason: strings.Repeat("x", 1000)}
	for pad.Len() < journalRotateAt-200 {
		line, err := encodeJournalLine(filler)
		require.NoError(t, err)
		pad.Write(line)
	}
	f, err := os.OpenFile(m.journalPath(), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(pad.Bytes())
	require.NoError(t, err)
	require.NoError(t, f.Close())
	rfs.counts()

	_, err = m.SwitchTo("b", "r")
	require.NoError(t, err)
	byName, opened, kept, _ := rfs.counts()
	assert.Equal(t, 1, opened)
	assert.Equal(t, 0, kept, "closed by the rotation")
	assert.Equal(t, 1, byName, "the done record appended by name, to the rotated journal")
	fi, err := os.Stat(m.journalPath())
	require.NoError(t, err)
	assert.Less(t, fi.Size(), int64(journalRotateAt), "rotated")
	entries, err := m.Journal()
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(entries), 2)
	assertSwitchedTo(t, m, "b", entries[len(entries)-2], entries[len(entries)-1])
}

// TestSwitchLooksAtTheSweepMarkerOncePerSweepAge: within the sweep age of
// a sweep it saw or made, a Manager does not look at the marker again;
// once the age has passed on the monotonic clock it looks, and sweeps.
func TestSwitchLooksAtTheSweepMarkerOncePerSweepAge(t *testing.T) {
	count := func(log []string) int {
		n := 0
		for _, op := range log {
			if op == "lstat "+sweptMarker {
				n++
			}
		}
		return n
	}
	m, ffs, subs := countingFixture(t, 3)
	for i := 0; i < 4; i++ {
		_, err := m.SwitchTo(subs[i%2], "r")
		require.NoError(t, err)
	}
	assert.Zero(t, count(ops(ffs)), "a sweep made by this Manager: no look at the marker")

	// Another Manager of the same creds dir sees the marker once.
	other, err := New(WithCredsDir(m.dir), WithSubscriptions(subs...), WithClock(fixedClock), withFS(ffs))
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		_, err := other.SwitchTo(subs[i%2], "r")
		require.NoError(t, err)
	}
	assert.Equal(t, 1, count(ops(ffs)), "the marker looked at once")

	// A short sweep age passes: the marker is looked at, and a stale
	// temporary is swept. Short, but long beside the few calls between
	// the two switches made within it, on a loaded machine too.
	const sweepAge = 500 * time.Millisecond
	short, err := New(WithCredsDir(m.dir), WithSubscriptions(subs...), WithClock(fixedClock), withFS(ffs), withSweepAge(sweepAge))
	require.NoError(t, err)
	_, err = short.SwitchTo(subs[0], "r")
	require.NoError(t, err)
	stale := filepath.Join(m.dir, "."+DefaultLiveName+tmpMarker+"leftover")
	writeFile(t, stale, []byte("x"))
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(stale, old, old))
	ops(ffs)
	_, err = short.SwitchTo(subs[1], "r")
	require.NoError(t, err)
	assert.Zero(t, count(ops(ffs)), "within the sweep age")
	assert.FileExists(t, stale)
	time.Sleep(sweepAge + 20*time.Millisecond)
	_, err = short.SwitchTo(subs[0], "r")
	require.NoError(t, err)
	assert.Equal(t, 1, count(ops(ffs)), "past the sweep age: looked at again")
	assert.NoFileExists(t, stale, "and swept")
}

// TestSwitchStatsTheCredsDirOnce: the creds dir is stat'ed once a switch,
// when the locks are taken (its real path still the one resolved); as
// root the live symlink's owner comes from that stat, not from another.
func TestSwitchStatsTheCredsDirOnce(t *testing.T) {
	m, ffs, subs := countingFixture(t, 3)
	_, err := m.SwitchTo(subs[0], "r")
	require.NoError(t, err)
	n := 0
	for _, op := range ops(ffs) {
		if op == "stat "+filepath.Base(m.dir) || op == "lstat "+filepath.Base(m.dir) {
			n++
		}
	}
	assert.Equal(t, 1, n, "the creds dir, its own real path, is looked at once")
}

// TestOwnerRecordAndKeptJournalAllocs pins the allocations of the owner
// record's encoding (none: it was encoding/json's reflection) and of a
// record appended through the journal a change keeps open.
func TestOwnerRecordAndKeptJournalAllocs(t *testing.T) {
	start, bt := "123", 1767225600123.0
	rec := clilock.Owner{PID: 42, ProcStart: &start, PIDDomain: "linux:m:pid:[1]", PIDSpace: "host#pid:[1]", LockBirthtimeMs: bt, LegacyLockBirthtimeMs: &bt}
	var buf [512]byte
	assertAllocs(t, testing.AllocsPerRun(100, func() {
		if _, ok := rec.AppendJSON(buf[:0]); !ok {
			t.Fatal("not encoded")
		}
	}), 0, "the owner record's encoding")

	m, _ := recordFixture(t)
	j := &heldJournal{keep: true}
	e := JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseDone, ID: "0123456789abcdef", Sub: "b", From: "a", Reason: "r"}
	require.NoError(t, m.recordTo(e, j))
	require.NotNil(t, j.f, "kept open")
	assertAllocs(t, testing.AllocsPerRun(50, func() { require.NoError(t, m.recordTo(e, j)) }), 0, "a record through the kept journal")
	j.close()
}

// TestUnchangedReadsAllocateNothing pins the reads of an unchanged slot at
// no allocation: SlotIsFresh's "valid until" reason is one validUntil
// kept, DetectSlotIdentityDrift's two fingerprints the ones interned
// (1 and 2 allocations before). The half is room for the buffer pool
// refilling itself after a GC.
func TestUnchangedReadsAllocateNothing(t *testing.T) {
	m, _, _ := countingFixture(t, 3)
	plain, err := New(WithCredsDir(m.CredsDir()), WithSubscriptions("sub0001"), WithClock(fixedClock))
	require.NoError(t, err)
	ok, why := plain.SlotIsFresh("sub0001")
	require.True(t, ok, why)
	info, err := plain.DetectSlotIdentityDrift("sub0001")
	require.NoError(t, err)
	require.False(t, info.Drift, info.Reason)
	assertAllocs(t, testing.AllocsPerRun(50, func() { plain.SlotIsFresh("sub0001") }), 0.5, "SlotIsFresh of an unchanged slot")
	assertAllocs(t, testing.AllocsPerRun(50, func() { _, _ = plain.DetectSlotIdentityDrift("sub0001") }), 0.5, "DetectSlotIdentityDrift of an unchanged slot")
	path := plain.SlotPath("sub0001")
	assertAllocs(t, testing.AllocsPerRun(50, func() { SlotIsFresh(path, time.Minute, testNow) }), 0.5, "the package-level SlotIsFresh")
}

// TestValidUntilKeptReasonsStayRight: expiries validUntil keeps at the
// same place replace one another, and each check still gives its own
// expiry, also from goroutines at once.
func TestValidUntilKeptReasonsStayRight(t *testing.T) {
	base := testNow.Add(48 * time.Hour)
	var expiries []time.Time
	at := validUntilSlot(base.Unix())
	for s := int64(0); len(expiries) < 4 && s < 1<<20; s++ {
		if e := base.Add(time.Duration(s) * time.Second); validUntilSlot(e.Unix()) == at {
			expiries = append(expiries, e)
		}
	}
	require.Len(t, expiries, 4)
	want := func(e time.Time) string { return "valid until " + e.UTC().Format(time.RFC3339) }
	for round := 0; round < 3; round++ {
		for _, e := range expiries {
			fresh, why := expiryVerdict(e, time.Minute, testNow)
			assert.True(t, fresh)
			assert.Equal(t, want(e), why)
		}
	}
	// A fraction of a second does not change the reason (RFC 3339 to the
	// second), so the kept one serves it.
	_, why := expiryVerdict(expiries[0].Add(500*time.Millisecond), time.Minute, testNow)
	assert.Equal(t, want(expiries[0]), why)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				e := expiries[(g+i)%len(expiries)]
				if _, why := expiryVerdict(e, time.Minute, testNow); why != want(e) {
					t.Errorf("got %q, want %q", why, want(e))
					return
				}
			}
		}(g)
	}
	wg.Wait()
}
