package credslots

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHealDriftToHeals(t *testing.T) {
	f := newFixture(t)
	old := writeSlot(t, f.slot("bob"), fresh, "rt-bob-1")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "bob")
	// The CLI refreshes: a new document, with fields and formatting of its
	// own that must survive byte for byte.
	refreshed := []byte("{\n  \"claudeAiOauth\": {\"accessToken\": \"at-2\", \"refreshToken\": \"rt-bob-2\",\n" +
		"    \"expiresAt\": 1767301200000, \"scopes\": [\"user:inference\"], \"subscriptionType\": \"max\"},\n" +
		"  \"mcpOAuth\": {\"srv\": {\"token\": \"x\"}}\n}\n")
	f.refresh(t, refreshed)

	res, err := f.m.HealDriftTo("bob")
	require.NoError(t, err)
	assert.Equal(t, SwitchResult{OK: true, Reason: "healed: synced live → .credentials.json.bob, symlink restored", Sub: "bob", From: "bob"}, res)

	slot, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, refreshed, slot, "the slot receives the live bytes exactly")
	prev, err := os.ReadFile(f.slot("bob") + ".prev")
	require.NoError(t, err)
	assert.Equal(t, old, prev, "the slot's previous content is kept")
	for _, p := range []string{f.slot("bob"), f.slot("bob") + ".prev", f.m.FingerprintPath("bob")} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), p)
	}
	assert.Equal(t, ".credentials.json.bob", f.readlink(t))
	sub, ok := f.m.ActiveSubscription()
	assert.True(t, ok)
	assert.Equal(t, "bob", sub)
	assert.Equal(t, []string{"bob|auto-heal drift (live cred resynced to slot)"}, f.hook.get())
	fp, _ := f.m.ReadStoredFingerprint("bob")
	assert.Equal(t, hashBytes([]byte("rt-bob-2")), fp)
	info, err := f.m.DetectLiveSlotDrift()
	require.NoError(t, err)
	assert.False(t, info.Drift)
	assert.Empty(t, tempLeftovers(t, f.dir))
	assert.Contains(t, f.logs.String(), "level=INFO")
}

func TestHealDriftToNewSlotHasNoBackup(t *testing.T) {
	f := newFixture(t)
	writeFile(t, f.m.LivePath(), claudeDoc(fresh, "rt-new"))
	res, err := f.m.HealDriftTo("erik")
	require.NoError(t, err)
	assert.True(t, res.OK)
	assert.NoFileExists(t, f.slot("erik")+".prev")
	assert.Equal(t, ".credentials.json.erik", f.readlink(t))
}

func TestHealDriftToRefusals(t *testing.T) {
	busy := func() []string { return []string{"agent-1"} }
	liveDoc := func(s string) func(t *testing.T, f *fixture) {
		return func(t *testing.T, f *fixture) {
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			writeFile(t, f.m.LivePath(), []byte(s))
		}
	}
	tests := []struct {
		name     string
		opts     []Option
		setup    func(t *testing.T, f *fixture)
		sub      string
		force    bool
		sentinel error
		reason   string
		prefix   bool
		locks    []string
	}{
		{name: "unknown sub", sub: "zed", sentinel: ErrUnknownSubscription,
			setup: liveDoc(string(claudeDoc(fresh, "x"))), reason: `unknown subscription: "zed" (known: bob, alice, erik)`},
		{name: "no live path", sub: "bob", sentinel: ErrNoDrift, reason: "no drift",
			setup: func(t *testing.T, f *fixture) { writeSlot(t, f.slot("bob"), fresh, "rt-bob") }},
		{name: "live matches a slot", sub: "bob", sentinel: ErrNoDrift, reason: "no drift",
			setup: func(t *testing.T, f *fixture) { writeSlot(t, f.slot("bob"), fresh, "rt-bob"); f.link(t, "bob") }},
		{name: "live regular copy of a slot", sub: "bob", sentinel: ErrNoDrift, reason: "no drift",
			setup: func(t *testing.T, f *fixture) {
				writeFile(t, f.m.LivePath(), writeSlot(t, f.slot("alice"), fresh, "rt-alice"))
			}},
		{name: "broken symlink", sub: "bob", sentinel: ErrUnhealable,
			reason: "live is a symlink — drift implies slot rewrite, not OAuth refresh",
			setup:  func(t *testing.T, f *fixture) { f.link(t, "alice") }},
		{name: "symlink to a non-slot", sub: "bob", sentinel: ErrUnhealable,
			reason: "live is a symlink — drift implies slot rewrite, not OAuth refresh",
			setup: func(t *testing.T, f *fixture) {
				writeSlot(t, f.dir+"/elsewhere.json", fresh, "rt-x")
				require.NoError(t, os.Symlink("elsewhere.json", f.m.LivePath()))
			}},
		{name: "not JSON", sub: "bob", sentinel: ErrUnhealable, prefix: true,
			reason: "live file unreadable or malformed JSON: ", setup: liveDoc("{not json")},
		{name: "truncated JSON", sub: "bob", sentinel: ErrUnhealable,
			reason: "live file unreadable or malformed JSON: unexpected end of JSON input", setup: liveDoc(`{"claudeAiOauth":`)},
		{name: "empty file", sub: "bob", sentinel: ErrUnhealable,
			reason: "live file unreadable or malformed JSON: unexpected end of JSON input", setup: liveDoc(``)},
		{name: "root not an object", sub: "bob", sentinel: ErrUnhealable,
			reason: "live file missing claudeAiOauth payload", setup: liveDoc(`[1,2]`)},
		{name: "no payload", sub: "bob", sentinel: ErrUnhealable,
			reason: "live file missing claudeAiOauth payload", setup: liveDoc(`{"other":{}}`)},
		{name: "payload not an object", sub: "bob", sentinel: ErrUnhealable,
			reason: "live file missing claudeAiOauth payload", setup: liveDoc(`{"claudeAiOauth":"x"}`)},
		{name: "no expiresAt", sub: "bob", sentinel: ErrUnhealable,
			reason: "live file missing expiresAt", setup: liveDoc(`{"claudeAiOauth":{"accessToken":"a"}}`)},
		{name: "string expiresAt", sub: "bob", sentinel: ErrUnhealable,
			reason: "live file missing expiresAt", setup: liveDoc(`{"claudeAiOauth":{"expiresAt":"1767283200000"}}`)},
		{name: "bool expiresAt", sub: "bob", sentinel: ErrUnhealable,
			reason: "live file missing expiresAt", setup: liveDoc(`{"claudeAiOauth":{"expiresAt":false}}`)},
		{name: "null expiresAt", sub: "bob", sentinel: ErrUnhealable,
			reason: "live file missing expiresAt", setup: liveDoc(`{"claudeAiOauth":{"expiresAt":null}}`)},
		{name: "huge expiresAt", sub: "bob", sentinel: ErrUnhealable,
			reason: "live file expiresAt unparseable", setup: liveDoc(`{"claudeAiOauth":{"expiresAt":1e30}}`)},
		{name: "expired", sub: "bob", sentinel: ErrNotFresh,
			reason: "live token expired or in grace (2026-01-01T10:30:00Z)", setup: liveDoc(string(claudeDoc(stale, "rt-new")))},
		{name: "in grace", sub: "bob", sentinel: ErrNotFresh,
			reason: "live token expired or in grace (2026-01-01T12:04:00Z)", setup: liveDoc(string(claudeDoc(testNow.Add(4*time.Minute), "rt-new")))},
		{name: "blank access token", sub: "bob", sentinel: ErrUnhealable,
			reason: "live credential is blank: claudeAiOauth.accessToken is empty (written after a failed refresh or a logout)",
			setup:  liveDoc(`{"claudeAiOauth":{"accessToken":"","refreshToken":"rt","expiresAt":1767283200000}}`)},
		{name: "blank refresh token", sub: "bob", sentinel: ErrUnhealable,
			reason: "live credential is blank: claudeAiOauth.refreshToken is empty (written after a failed refresh or a logout)",
			setup:  liveDoc(`{"claudeAiOauth":{"accessToken":"at","refreshToken":"","expiresAt":1767283200000}}`)},
		{name: "deferred", sub: "bob", sentinel: ErrDeferred, opts: []Option{WithLockGuard(busy)},
			reason: "deferred: active lock(s) agent-1; would heal to bob", locks: []string{"agent-1"},
			setup: liveDoc(string(claudeDoc(fresh, "rt-new")))},
		{name: "expired even with force", sub: "bob", sentinel: ErrNotFresh, force: true, opts: []Option{WithLockGuard(busy)},
			reason: "live token expired or in grace (2026-01-01T10:30:00Z)", setup: liveDoc(string(claudeDoc(stale, "rt-new")))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts...)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			beforeSlot, _ := os.ReadFile(f.slot("bob"))
			beforeLive, _ := os.ReadFile(f.m.LivePath())
			beforeLink := f.readlink(t)
			var opts []SwitchOption
			if tt.force {
				opts = append(opts, Force())
			}
			res, err := f.m.HealDriftTo(tt.sub, opts...)
			require.Error(t, err)
			assert.False(t, res.OK)
			assert.ErrorIs(t, err, tt.sentinel)
			if tt.prefix {
				assert.Contains(t, res.Reason, tt.reason)
				assert.NotContains(t, res.Reason, "not json", "the detail does not quote the document")
			} else {
				assert.Equal(t, tt.reason, res.Reason)
			}
			assert.Contains(t, err.Error(), res.Reason)
			assert.Equal(t, tt.locks, res.DeferredLocks)
			afterSlot, _ := os.ReadFile(f.slot("bob"))
			afterLive, _ := os.ReadFile(f.m.LivePath())
			assert.Equal(t, beforeSlot, afterSlot, "slot untouched")
			assert.Equal(t, beforeLive, afterLive, "live untouched")
			assert.Equal(t, beforeLink, f.readlink(t))
			assert.NoFileExists(t, f.slot("bob")+".prev")
			assert.Empty(t, f.hook.get())
			assert.Empty(t, tempLeftovers(t, f.dir))
		})
	}
}

func TestHealDriftToForceOverridesGuard(t *testing.T) {
	f := newFixture(t, WithLockGuard(func() []string { return []string{"agent-1"} }))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeFile(t, f.m.LivePath(), claudeDoc(fresh, "rt-bob-2"))
	res, err := f.m.HealDriftTo("bob", Force())
	require.NoError(t, err)
	assert.True(t, res.OK)
	assert.Empty(t, res.DeferredLocks)
}

func TestHealDriftToUnreadableLiveIsAnError(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, os.Mkdir(f.m.LivePath(), 0o700))
	res, err := f.m.HealDriftTo("bob")
	require.Error(t, err)
	assert.False(t, res.OK)
}

// A heal or adopt whose slot write lands and whose swap then fails: the
// slot holds the login, and its identity is captured, so that it reads as
// the sub's, not as drift; the next change puts the link back.
func TestAHealWhoseSwapFailedAfterTheSlotWriteCapturesTheLogin(t *testing.T) {
	for _, adopt := range []bool{false, true} {
		name := map[bool]string{false: "heal", true: "adopt"}[adopt]
		t.Run(name, func(t *testing.T) {
			ffs := &faultFS{inner: disk.OS{}, failAt: -1, ops: map[string]bool{"symlink": true}}
			f := newFixture(t, withFS(ffs))
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			writeSlot(t, f.slot("alice"), fresh, "rt-alice")
			f.link(t, "bob")
			_, err := f.m.SwitchTo("bob", "capture")
			require.NoError(t, err)
			time.Sleep(10 * time.Millisecond)
			login := claudeDoc(fresh.Add(time.Hour), "rt-new")
			f.refresh(t, login)
			ffs.mu.Lock()
			ffs.n, ffs.failAt = 0, 1 // the swap's temporary link
			ffs.mu.Unlock()
			sub := "bob"
			if adopt {
				sub = "erik"
				_, err = f.m.Adopt(sub, Force())
			} else {
				_, err = f.m.HealDriftTo(sub)
			}
			require.ErrorIs(t, err, errInjected)
			ffs.mu.Lock()
			ffs.failAt = -1
			ffs.mu.Unlock()
			got, err := os.ReadFile(f.slot(sub))
			require.NoError(t, err)
			require.Equal(t, login, got, "the slot write landed")
			fp, ok := f.m.ReadStoredFingerprint(sub)
			require.True(t, ok)
			assert.Equal(t, hashBytes([]byte("rt-new")), fp, "and its identity is captured")
			st, err := f.m.Status()
			require.NoError(t, err)
			assert.NotContains(t, strings.Join(st.Problems, "\n"), "slot "+sub+": identity drift")
			res, err := f.m.SwitchTo(sub, "again")
			require.NoError(t, err, res.Reason)
			target, err := os.Readlink(f.m.LivePath())
			require.NoError(t, err)
			assert.Equal(t, filepath.Base(f.slot(sub)), target)
		})
	}
}
