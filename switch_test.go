package credslots

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// assertRefused checks the shape every refusal shares.
func assertRefused(t *testing.T, res SwitchResult, err error, sentinel error, reason string) {
	t.Helper()
	require.Error(t, err)
	assert.False(t, res.OK)
	assert.ErrorIs(t, err, sentinel)
	assert.Equal(t, reason, res.Reason)
	assert.Contains(t, err.Error(), reason)
}

func TestSwitchToSucceeds(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, f *fixture)
		from  string
	}{
		{"no live path yet", func(t *testing.T, f *fixture) {}, ""},
		{"from another slot", func(t *testing.T, f *fixture) { f.link(t, "alice") }, "alice"},
		{"from a broken symlink", func(t *testing.T, f *fixture) { f.link(t, "erik") }, ""},
		{"from a regular file equal to a slot", func(t *testing.T, f *fixture) {
			data, err := os.ReadFile(f.slot("alice"))
			require.NoError(t, err)
			writeFile(t, f.m.LivePath(), data)
		}, ""},
		{"already active", func(t *testing.T, f *fixture) { f.link(t, "bob") }, "bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			writeSlot(t, f.slot("alice"), fresh, "rt-alice")
			tt.setup(t, f)

			res, err := f.m.SwitchTo("bob", "alice quota exhausted")
			require.NoError(t, err)
			assert.Equal(t, SwitchResult{OK: true, Reason: "switched to bob", Sub: "bob", From: tt.from}, res)
			assert.Equal(t, ".credentials.json.bob", f.readlink(t), "relative target")
			sub, ok := f.m.ActiveSubscription()
			assert.True(t, ok)
			assert.Equal(t, "bob", sub)
			assert.Equal(t, []string{"bob|alice quota exhausted"}, f.hook.get())
			fp, ok := f.m.ReadStoredFingerprint("bob")
			assert.True(t, ok, "switch captures the fingerprint")
			assert.Equal(t, hashBytes([]byte("rt-bob")), fp)
			assert.Contains(t, f.logs.String(), "level=INFO")
			assert.Contains(t, f.logs.String(), "sub=bob")
			assert.NoFileExists(t, f.m.LivePath()+".prev", "nothing needed keeping")
			assert.Empty(t, tempLeftovers(t, f.dir))
			fi, err := os.Stat(filepath.Join(f.dir, ".credslots", "lock"))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
			fi, err = os.Stat(filepath.Join(f.dir, ".credslots"))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
			assert.NoFileExists(t, f.m.LivePath()+".lock", "the CLI's commit lock name is never used")
		})
	}
}

func TestSwitchToDirectoryTemplate(t *testing.T) {
	f := newFixture(t, WithSlotTemplate("slots/{sub}.json"), WithFingerprintTemplate("slots/{sub}.fp.json"))
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	res, err := f.m.SwitchTo("alice", "test")
	require.NoError(t, err)
	assert.True(t, res.OK)
	assert.Equal(t, "slots/alice.json", f.readlink(t))
	data, err := os.ReadFile(f.m.LivePath())
	require.NoError(t, err)
	assert.Contains(t, string(data), "rt-alice")
	assert.FileExists(t, filepath.Join(f.dir, "slots", "alice.fp.json"))
}

func TestSwitchToRefusals(t *testing.T) {
	busy := func() []string { return []string{"agent-1", "agent-2"} }
	tests := []struct {
		name     string
		opts     []Option
		setup    func(t *testing.T, f *fixture)
		sub      string
		force    bool
		sentinel error
		reason   string
		locks    []string
	}{
		{
			name: "unknown sub", sub: "zed", sentinel: ErrUnknownSubscription,
			opts:   []Option{WithLockGuard(busy)},
			reason: `unknown subscription: "zed" (known: bob, alice, erik)`,
		},
		{
			name: "deferred by busy-signals", sub: "bob", sentinel: ErrDeferred,
			opts:   []Option{WithLockGuard(busy)},
			setup:  func(t *testing.T, f *fixture) {},
			reason: "deferred: active lock(s) agent-1, agent-2; would switch to bob (rotate)",
			locks:  []string{"agent-1", "agent-2"},
		},
		{
			name: "slot missing", sub: "alice", sentinel: ErrSlotMissing,
		},
		{
			name: "expired slot", sub: "bob", sentinel: ErrNotFresh,
			setup:  func(t *testing.T, f *fixture) { writeSlot(t, f.slot("bob"), stale, "rt-bob") },
			reason: "refusing to switch to bob: expired 90m ago (at 2026-01-01T10:30:00Z)",
		},
		{
			name: "expired slot even with force", sub: "bob", force: true, sentinel: ErrNotFresh,
			opts:   []Option{WithLockGuard(busy)},
			setup:  func(t *testing.T, f *fixture) { writeSlot(t, f.slot("bob"), stale, "rt-bob") },
			reason: "refusing to switch to bob: expired 90m ago (at 2026-01-01T10:30:00Z)",
		},
		{
			name: "slot within grace", sub: "bob", sentinel: ErrNotFresh,
			setup:  func(t *testing.T, f *fixture) { writeSlot(t, f.slot("bob"), testNow.Add(time.Minute), "rt-bob") },
			reason: "refusing to switch to bob: expires within grace (60s left, at 2026-01-01T12:01:00Z)",
		},
		{
			name: "unreadable slot", sub: "bob", sentinel: ErrNotFresh,
			setup:  func(t *testing.T, f *fixture) { writeFile(t, f.slot("bob"), []byte("not json")) },
			reason: "refusing to switch to bob: unreadable or no expiresAt in .credentials.json.bob",
		},
		{
			name: "identity drift", sub: "bob", sentinel: ErrIdentityDrift,
			setup: func(t *testing.T, f *fixture) {
				writeSlot(t, f.slot("bob"), fresh, "rt-bob")
				_, err := f.m.CaptureSlotFingerprint("bob")
				require.NoError(t, err)
				writeSlot(t, f.slot("bob"), fresh, "rt-intruder")
			},
			reason: "refusing to switch to bob: refresh token changed since last capture — slot identity may have been replaced; verify the login, then CaptureSlotFingerprint (or Force)",
		},
		{
			name: "live file drifted", sub: "bob", sentinel: ErrLiveDrifted,
			setup: func(t *testing.T, f *fixture) {
				writeSlot(t, f.slot("bob"), fresh, "rt-bob")
				writeFile(t, f.m.LivePath(), claudeDoc(fresh, "rt-only-copy"))
			},
			reason: "refusing to switch to bob: live file .credentials.json matches no slot and would be lost; heal it into its slot first (HealDriftTo) or Force to keep it as .credentials.json.prev",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts...)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			reason := tt.reason
			if tt.sentinel == ErrSlotMissing {
				reason = "slot missing: " + f.slot(tt.sub)
			}
			beforeLink := f.readlink(t)
			beforeLive, _ := os.ReadFile(f.m.LivePath())
			var opts []SwitchOption
			if tt.force {
				opts = append(opts, Force())
			}
			res, err := f.m.SwitchTo(tt.sub, "rotate", opts...)
			assertRefused(t, res, err, tt.sentinel, reason)
			assert.Equal(t, tt.locks, res.DeferredLocks)
			assert.Empty(t, f.hook.get(), "no hook on refusal")
			assert.Contains(t, f.logs.String(), "level=WARN")
			assert.Equal(t, beforeLink, f.readlink(t), "live symlink unchanged")
			afterLive, _ := os.ReadFile(f.m.LivePath())
			assert.Equal(t, beforeLive, afterLive, "live content unchanged")
			assert.Empty(t, tempLeftovers(t, f.dir))
			for _, sentinel := range []error{ErrUnknownSubscription, ErrDeferred, ErrSlotMissing, ErrNotFresh, ErrIdentityDrift, ErrLiveDrifted} {
				if sentinel != tt.sentinel {
					assert.False(t, errors.Is(err, sentinel), "wraps exactly one sentinel")
				}
			}
		})
	}
}

func TestSwitchToDeferredIsLoggedWithLocks(t *testing.T) {
	f := newFixture(t, WithLockGuard(func() []string { return []string{"agent-7"} }))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	_, err := f.m.SwitchTo("bob", "cron")
	require.ErrorIs(t, err, ErrDeferred)
	logs := f.logs.String()
	assert.Contains(t, logs, "level=WARN")
	assert.Contains(t, logs, "locks=[agent-7]")
	assert.Contains(t, logs, "sub=bob")
}

func TestSwitchToForceOverridesGuardIdentityAndLiveDrift(t *testing.T) {
	guardCalls := 0
	f := newFixture(t, WithLockGuard(func() []string { guardCalls++; return []string{"busy"} }))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	_, err := f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob-relogin")
	drifted := claudeDoc(fresh, "rt-only-copy")
	writeFile(t, f.m.LivePath(), drifted)

	res, err := f.m.SwitchTo("bob", "operator", Force())
	require.NoError(t, err)
	assert.True(t, res.OK)
	assert.Empty(t, res.DeferredLocks)
	assert.Zero(t, guardCalls, "force does not consult the guard")
	assert.Equal(t, ".credentials.json.bob", f.readlink(t))

	kept, err := os.ReadFile(f.m.LivePath() + ".prev")
	require.NoError(t, err)
	assert.Equal(t, drifted, kept, "the drifted live file is kept before it is replaced")
	fi, err := os.Stat(f.m.LivePath() + ".prev")
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	fp, _ := f.m.ReadStoredFingerprint("bob")
	assert.Equal(t, hashBytes([]byte("rt-bob-relogin")), fp, "forced switch re-captures")
}

func TestSwitchToOrderOfChecks(t *testing.T) {
	// Each row breaks every check from its own onwards; the earliest must win.
	f := newFixture(t, WithLockGuard(func() []string { return []string{"busy"} }))
	_, err := f.m.SwitchTo("zed", "r")
	assert.ErrorIs(t, err, ErrUnknownSubscription, "unknown sub before the guard")
	_, err = f.m.SwitchTo("bob", "r")
	assert.ErrorIs(t, err, ErrDeferred, "guard before slot missing")
	_, err = f.m.SwitchTo("bob", "r", Force())
	assert.ErrorIs(t, err, ErrSlotMissing, "slot missing before freshness")

	writeSlot(t, f.slot("bob"), stale, "rt-bob")
	_, err = f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	writeSlot(t, f.slot("bob"), stale, "rt-other")
	writeFile(t, f.m.LivePath(), claudeDoc(fresh, "rt-drift"))
	g, err := New(WithCredsDir(f.dir), WithSubscriptions("bob", "alice", "erik"), WithClock(fixedClock))
	require.NoError(t, err)
	_, err = g.SwitchTo("bob", "r")
	assert.ErrorIs(t, err, ErrNotFresh, "freshness before identity drift")

	writeSlot(t, f.slot("bob"), fresh, "rt-other")
	_, err = g.SwitchTo("bob", "r")
	assert.ErrorIs(t, err, ErrIdentityDrift, "identity drift before live drift")

	_, err = g.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	_, err = g.SwitchTo("bob", "r")
	assert.ErrorIs(t, err, ErrLiveDrifted)
}

func TestSwitchLogsNoTokenMaterial(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-SECRET-bob")
	writeSlot(t, f.slot("alice"), stale, "rt-SECRET-alice")
	writeFile(t, f.m.LivePath(), claudeDoc(fresh, "rt-SECRET-live"))
	_, err := f.m.SwitchTo("alice", "r")
	require.Error(t, err)
	_, err = f.m.SwitchTo("bob", "r")
	require.Error(t, err)
	_, err = f.m.HealDriftTo("bob")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("bob", "r", Force())
	require.NoError(t, err)
	assert.NotContains(t, f.logs.String(), "SECRET")
	assert.True(t, strings.Count(f.logs.String(), "\n") >= 4)
}

// TestSwitchSyncCount pins the fsyncs of a switch between two captured slots:
// the journal's intent (durable before the live path changes) and the
// directory after the swap. The done record is appended without an fsync
// (lost to a crash, it leaves an intent alone, which HealDrift refuses), and
// the unchanged sidecar is not rewritten.
func TestSwitchSyncCount(t *testing.T) {
	ffs := &faultFS{inner: disk.OS{}, failAt: -1, ops: map[string]bool{"sync": true, "syncdir": true, "fsync": true, "append": true, "createnew": true}}
	f := newFixture(t, withFS(ffs))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	for _, sub := range []string{"bob", "alice"} {
		_, err := f.m.SwitchTo(sub, "warm up")
		require.NoError(t, err)
	}
	ffs.log = nil
	_, err := f.m.SwitchTo("bob", "r")
	require.NoError(t, err)
	want := []string{"append journal.jsonl", "fsync journal.jsonl", "syncdir " + filepath.Base(f.dir), "append journal.jsonl"}
	if ownerRecordPossible(f.dir) {
		// Where the owner record beside Claude Code's refresh lock can be
		// written, it is: one new file, no fsync, as Claude Code writes its own.
		want = append([]string{"createnew .oauth_refresh.lock.owner"}, want...)
	}
	assert.Equal(t, want, ffs.log)
}
