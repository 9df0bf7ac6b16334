package credslots

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCandidatesRankAndExplain(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh.Add(time.Hour), "rt-alice")
	writeSlot(t, f.slot("erik"), stale, "rt-erik")
	f.link(t, "bob")
	require.NoError(t, f.m.Rest("alice", testNow.Add(time.Hour), "429"))

	got := f.m.Candidates()
	require.Len(t, got, 3)
	assert.Equal(t, "bob", got[0].Sub)
	assert.True(t, got[0].Usable)
	assert.True(t, got[0].Active)
	assert.Equal(t, "alice", got[1].Sub, "unusable after usable, the latest expiry first")
	assert.False(t, got[1].Usable)
	require.NotNil(t, got[1].RestingUntil)
	assert.Contains(t, got[1].PassedOver, "resting until 2026-01-01T13:00:00Z: 429")
	assert.Equal(t, "erik", got[2].Sub)
	assert.Contains(t, got[2].PassedOver, "expired")
}

func TestSwitchNext(t *testing.T) {
	t.Run("passes over the active, resting, invalid and stale", func(t *testing.T) {
		f := newFixture(t, WithSubscriptions("bob", "alice", "erik", "finn"))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		writeSlot(t, f.slot("alice"), fresh.Add(3*time.Hour), "rt-alice")
		writeSlot(t, f.slot("erik"), fresh.Add(2*time.Hour), "rt-erik")
		writeSlot(t, f.slot("finn"), fresh.Add(time.Hour), "rt-finn")
		f.link(t, "bob")
		require.NoError(t, f.m.Rest("alice", testNow.Add(time.Hour), "429"))
		require.NoError(t, f.m.MarkInvalid("erik", "401"))
		res, err := f.m.SwitchNext("quota")
		require.NoError(t, err)
		assert.Equal(t, "switched to finn", res.Reason)
	})
	t.Run("none left", func(t *testing.T) {
		f := newFixture(t)
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		writeSlot(t, f.slot("alice"), stale, "rt-alice")
		f.link(t, "bob")
		require.NoError(t, f.m.Rest("erik", testNow.Add(time.Hour), "429"))
		before := snapshot(t, f.dir)
		res, err := f.m.SwitchNext("quota")
		require.ErrorIs(t, err, ErrNoCandidate)
		assert.False(t, res.OK)
		for _, want := range []string{"bob: active", "alice: expired", "erik: slot missing"} {
			assert.Contains(t, res.Reason, want)
		}
		assert.Equal(t, before, snapshot(t, f.dir), "a refusal changes nothing")
	})
	t.Run("a refusal that is not the candidate's is returned", func(t *testing.T) {
		f := newFixture(t, WithLockGuard(func() []string { return []string{"agent-1"} }))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		writeSlot(t, f.slot("alice"), fresh, "rt-alice")
		f.link(t, "bob")
		_, err := f.m.SwitchNext("quota")
		require.ErrorIs(t, err, ErrDeferred)
	})
	t.Run("a rest that ended counts no more", func(t *testing.T) {
		f := newFixture(t)
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		writeSlot(t, f.slot("alice"), fresh, "rt-alice")
		f.link(t, "bob")
		require.NoError(t, f.m.Rest("alice", testNow.Add(time.Hour), "429"))
		require.NoError(t, f.m.Rest("alice", testNow, "over"))
		res, err := f.m.SwitchNext("quota")
		require.NoError(t, err)
		assert.Equal(t, "switched to alice", res.Reason)
	})
}

func TestMarkInvalid(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "alice")
	require.NoError(t, f.m.MarkInvalid("bob", "401 Unauthorized"))

	res, err := f.m.SwitchTo("bob", "r")
	require.ErrorIs(t, err, ErrInvalidated)
	assert.Contains(t, res.Reason, "401 Unauthorized")
	st, err := f.m.Status()
	require.NoError(t, err)
	assert.True(t, st.Slots[0].Invalid)
	assert.Equal(t, "401 Unauthorized", st.Slots[0].InvalidReason)

	_, err = f.m.SwitchTo("bob", "r", Force())
	require.NoError(t, err, "Force overrides")
	st, err = f.m.Status()
	require.NoError(t, err)
	assert.Contains(t, strings.Join(st.Problems, "\n"), "rejected by the server")

	// A new login for bob clears it.
	writeSlot(t, f.slot("bob"), fresh, "rt-bob-new")
	_, err = f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("alice", "r")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("bob", "r")
	require.NoError(t, err)

	entries, err := f.m.Journal()
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	assert.Equal(t, opInvalid, entries[0].Op)
	assert.Equal(t, hashBytes([]byte("rt-bob")), entries[0].Fingerprint)
}

func TestRestAndMarkInvalidRefuseUnknownSubs(t *testing.T) {
	f := newFixture(t)
	before := snapshot(t, f.dir)
	require.ErrorIs(t, f.m.Rest("zed", testNow.Add(time.Hour), "x"), ErrUnknownSubscription)
	require.ErrorIs(t, f.m.MarkInvalid("zed", "x"), ErrUnknownSubscription)
	assert.Equal(t, before, snapshot(t, f.dir))
}

func TestAdopt(t *testing.T) {
	t.Run("a new login goes into a new slot", func(t *testing.T) {
		f := newFixture(t)
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		f.link(t, "bob")
		login := claudeDoc(fresh, "rt-erik-login")
		f.refresh(t, login)
		res, err := f.m.Adopt("erik")
		require.NoError(t, err)
		assert.Equal(t, "adopted: live login written to .credentials.json.erik, symlink restored", res.Reason)
		got, err := os.ReadFile(f.slot("erik"))
		require.NoError(t, err)
		assert.Equal(t, login, got)
		assert.Equal(t, ".credentials.json.erik", f.readlink(t))
		fp, ok := f.m.ReadStoredFingerprint("erik")
		require.True(t, ok)
		assert.Equal(t, hashBytes([]byte("rt-erik-login")), fp)
		last, ok := f.m.LastActive()
		require.True(t, ok)
		assert.Equal(t, "erik", last)
	})
	t.Run("refusals change nothing", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			live []byte
			sub  string
			want error
		}{
			{"another slot's identity", claudeDoc(fresh, "rt-bob"), "erik", ErrNoDrift},
			{"a slot with another login", claudeDoc(fresh, "rt-new"), "alice", ErrIdentityDrift},
			{"unknown sub", claudeDoc(fresh, "rt-new"), "zed", ErrUnknownSubscription},
			{"stale login", claudeDoc(stale, "rt-new"), "erik", ErrNotFresh},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t)
				writeSlot(t, f.slot("bob"), fresh, "rt-bob")
				writeSlot(t, f.slot("alice"), fresh, "rt-alice")
				f.refresh(t, tc.live)
				before := snapshot(t, f.dir)
				_, err := f.m.Adopt(tc.sub)
				require.ErrorIs(t, err, tc.want)
				assert.Equal(t, before, snapshot(t, f.dir))
			})
		}
	})
	t.Run("another slot's captured identity", func(t *testing.T) {
		f := newFixture(t, WithFormat(CodexCLI))
		writeFile(t, f.slot("bob"), codexDoc(fresh, "acct-bob"))
		f.link(t, "bob")
		_, err := f.m.CaptureSlotFingerprint("bob")
		require.NoError(t, err)
		f.refresh(t, codexDoc(fresh.Add(time.Hour), "acct-bob"))
		_, err = f.m.Adopt("erik")
		require.ErrorIs(t, err, ErrIdentityDrift)
		assert.Contains(t, err.Error(), "tokens.account_id")
		_, err = f.m.Adopt("erik", Force())
		require.NoError(t, err, "Force overrides")
	})
	t.Run("Force replaces a slot's login", func(t *testing.T) {
		f := newFixture(t)
		old := writeSlot(t, f.slot("alice"), fresh, "rt-alice")
		f.refresh(t, claudeDoc(fresh, "rt-alice-relogin"))
		_, err := f.m.Adopt("alice", Force())
		require.NoError(t, err)
		prev, err := os.ReadFile(f.slot("alice") + prevSuffix)
		require.NoError(t, err)
		assert.Equal(t, old, prev, "the old login is kept as the slot's backup")
	})
}

func TestStateFileFailsClosed(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "alice")
	require.NoError(t, f.m.MarkInvalid("bob", strings.Repeat("é", 2000)))
	st, err := f.m.Status()
	require.NoError(t, err)
	assert.LessOrEqual(t, len(st.Slots[0].InvalidReason), 512, "reasons are bounded")
	assert.True(t, utf8.ValidString(st.Slots[0].InvalidReason))

	// A state file that cannot be read is never taken as empty: the
	// rejection of bob must keep standing.
	writeFile(t, filepath.Join(f.dir, ".credslots", "state.json"), []byte("{not json"))
	_, err = f.m.SwitchTo("bob", "r")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "state file")
	assert.Equal(t, ".credentials.json.alice", f.readlink(t))
	for _, c := range f.m.Candidates() {
		assert.False(t, c.Usable, c.Sub)
	}
	_, err = f.m.SwitchNext("r")
	require.ErrorIs(t, err, ErrNoCandidate)
	require.Error(t, f.m.Rest("bob", testNow.Add(time.Hour), "x"), "a state change does not overwrite what it cannot read")
	st, err = f.m.Status()
	require.NoError(t, err)
	assert.False(t, st.Healthy)
	assert.Contains(t, strings.Join(st.Problems, "\n"), "state file")
}
