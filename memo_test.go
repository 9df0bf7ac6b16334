package credslots

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/readmemo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMemoAnswersAsAFreshRead: a Manager that has read its files before
// answers every check as a new Manager, which remembers nothing, does,
// through a run of rewrites in place (same size, same inode: what a
// cache by stat would miss), returns to earlier bytes, and files that are
// broken, expired or gone.
func TestMemoAnswersAsAFreshRead(t *testing.T) {
	f := newFixture(t)
	for _, sub := range []string{"bob", "alice", "erik"} {
		writeSlot(t, f.slot(sub), fresh, "rt-"+sub+"-0")
		_, err := f.m.CaptureSlotFingerprint(sub)
		require.NoError(t, err)
	}
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)

	bob0, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	side0, err := os.ReadFile(f.m.FingerprintPath("bob"))
	require.NoError(t, err)
	steps := []struct {
		name       string
		slot, side []byte // nil: leave as it is
	}{
		{"as captured", nil, nil},
		{"refreshed in place, same size", claudeDoc(fresh.Add(time.Hour), "rt-bob-1"), nil},
		{"back to the first bytes", bob0, nil},
		{"expired, same size", claudeDoc(stale, "rt-bob-0"), nil},
		{"another account's login", claudeDoc(fresh, "rt-eve-0"), nil},
		{"the sidecar rewritten for it", nil, []byte(`{"captured_at":"2026-01-01T00:00:00Z","refresh_token_sha256":"` + hashBytes([]byte("rt-eve-0")) + `","slot":"bob"}`)},
		{"malformed", []byte(`{"claudeAiOauth":`), nil},
		{"blank", claudeDoc(fresh, ""), side0},
		{"first bytes again", bob0, nil},
		{"sidecar malformed", nil, []byte(`{"refresh_token_sha256":`)},
		{"sidecar back", nil, side0},
	}
	for _, step := range steps {
		if step.slot != nil {
			writeFile(t, f.slot("bob"), step.slot)
		}
		if step.side != nil {
			writeFile(t, f.m.FingerprintPath("bob"), step.side)
		}
		again, err := New(WithCredsDir(f.dir), WithSubscriptions("bob", "alice", "erik"), WithClock(fixedClock))
		require.NoError(t, err)
		for i := 0; i < 2; i++ { // the second time from the memo
			ok, why := f.m.SlotIsFresh("bob")
			wantOK, wantWhy := again.SlotIsFresh("bob")
			assert.Equal(t, wantOK, ok, step.name)
			assert.Equal(t, wantWhy, why, step.name)

			id, err := f.m.DetectSlotIdentityDrift("bob")
			wantID, wantErr := again.DetectSlotIdentityDrift("bob")
			assert.Equal(t, wantID, id, step.name)
			assert.Equal(t, wantErr, err, step.name)

			drift, err := f.m.DetectLiveSlotDrift()
			wantDrift, wantErr := again.DetectLiveSlotDrift()
			assert.Equal(t, wantDrift, drift, step.name)
			assert.Equal(t, wantErr, err, step.name)

			assert.Equal(t, again.currentLogin("bob"), f.m.currentLogin("bob"), step.name)
		}
	}
}

// TestMemoAnswersAreTheRemembered: the checks take the remembered answer
// for bytes read before, and only for those bytes: an answer planted for
// the slot's current bytes is what the check returns, and one byte changed
// is read afresh.
func TestMemoAnswersAreTheRemembered(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob-0")
	_, err := f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	slot, side := f.slot("bob"), f.m.FingerprintPath("bob")
	data, err := os.ReadFile(slot)
	require.NoError(t, err)
	sideData, err := os.ReadFile(side)
	require.NoError(t, err)
	k, sk := readmemo.KeyOf(data), readmemo.KeyOf(sideData)

	planted := fresh.Add(24 * time.Hour)
	f.m.memoOf(slot).expiry.Put(k, credential{expiry: planted, expiryOK: true})
	f.m.memoOf(slot).identity.Put(k, credential{fingerprint: "planted-identity"})
	f.m.memoOf(side).sidecar.Put(sk, "planted-identity")
	f.m.memoOf(slot).hash.Put(k, "planted-slot-hash")
	f.m.memoOf(f.m.LivePath()).hash.Put(k, "planted-slot-hash") // the live path holds the same bytes

	ok, why := f.m.SlotIsFresh("bob")
	assert.True(t, ok)
	assert.Equal(t, validUntil(planted), why)
	id, err := f.m.DetectSlotIdentityDrift("bob")
	require.NoError(t, err)
	assert.Equal(t, "planted-identity", id.CurrentFingerprint)
	assert.Equal(t, "planted-identity", id.StoredFingerprint)
	drift, err := f.m.DetectLiveSlotDrift()
	require.NoError(t, err)
	assert.Equal(t, "planted-slot-hash", drift.SlotHashes["bob"])
	assert.Equal(t, "planted-slot-hash", drift.LiveHash)

	// One byte changed (of the access token): read afresh.
	changed := bytes.Replace(data, []byte("oat01"), []byte("oat02"), 1)
	require.NotEqual(t, data, changed)
	writeFile(t, slot, changed)
	ok, why = f.m.SlotIsFresh("bob")
	assert.True(t, ok)
	assert.Equal(t, validUntil(fresh), why)
	id, err = f.m.DetectSlotIdentityDrift("bob")
	require.NoError(t, err)
	assert.Equal(t, hashBytes([]byte("rt-bob-0")), id.CurrentFingerprint)
	drift, err = f.m.DetectLiveSlotDrift()
	require.NoError(t, err)
	assert.Equal(t, hashBytes(changed), drift.SlotHashes["bob"])
	assert.Equal(t, hashBytes(changed), drift.LiveHash)

	// A path that is none of the Manager's files has no memo.
	assert.Nil(t, f.m.memoOf(slot+".other"))
}
