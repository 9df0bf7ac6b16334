package credslots

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/credfile"
	"github.com/gptme/credslots/internal/readmemo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memoDoc builds a credential of a format whose identity and login may
// differ (Codex CLI: account_id and refresh_token), or are one (Claude
// Code: the refresh token).
type memoDoc func(expiry time.Time, account, refreshToken string) []byte

func claudeMemoDoc(expiry time.Time, _, refreshToken string) []byte {
	return claudeDoc(expiry, refreshToken)
}

func codexMemoDoc(expiry time.Time, account, refreshToken string) []byte {
	return []byte(fmt.Sprintf(`{"OPENAI_API_KEY":null,"tokens":{"id_token":"x","access_token":%q,"refresh_token":%q,"account_id":%q},"last_refresh":"2026-01-01T00:00:00Z"}`,
		testJWT(fmt.Sprintf(`{"exp":%d,"sub":"u"}`, expiry.Unix())), refreshToken, account))
}

// TestMemoAnswersAsAFreshRead: a Manager that has read its files before
// answers every check as the bytes now on disk do, parsed and hashed
// afresh: through rewrites in place (same size, same inode: what a cache
// by stat would miss), returns to earlier bytes, and files that are
// broken, expired, another account's or gone.
func TestMemoAnswersAsAFreshRead(t *testing.T) {
	for _, fc := range []struct {
		name   string
		format Format
		doc    memoDoc
	}{{"claude", ClaudeCode, claudeMemoDoc}, {"codex", CodexCLI, codexMemoDoc}} {
		t.Run(fc.name, func(t *testing.T) {
			f := newFixture(t, WithFormat(fc.format))
			for _, sub := range []string{"bob", "alice", "erik"} {
				writeFile(t, f.slot(sub), fc.doc(fresh, "acct-"+sub, "rt-"+sub+"-0"))
				_, err := f.m.CaptureSlotFingerprint(sub)
				require.NoError(t, err)
			}
			_, err := f.m.SwitchTo("bob", "start")
			require.NoError(t, err)
			slot, side := f.slot("bob"), f.m.FingerprintPath("bob")
			bob0, side0 := readBytes(t, slot), readBytes(t, side)
			steps := []struct {
				name       string
				slot, side []byte // nil: leave as it is
				gone       bool   // remove the sidecar
			}{
				{name: "as captured"},
				{name: "refreshed in place, same size", slot: fc.doc(fresh.Add(time.Hour), "acct-bob", "rt-bob-1")},
				{name: "back to the first bytes", slot: bob0},
				{name: "expired, same size", slot: fc.doc(stale, "acct-bob", "rt-bob-0")},
				{name: "another account's login", slot: fc.doc(fresh, "acct-eve", "rt-eve-0")},
				{name: "alice's copy", slot: readBytes(t, f.slot("alice"))},
				{name: "the sidecar rewritten", side: []byte(`{"captured_at":"2026-01-01T00:00:00Z","refresh_token_sha256":"` + hashBytes([]byte("acct-eve")) + `","slot":"bob"}`)},
				{name: "malformed", slot: []byte(`{"claudeAiOauth":`)},
				{name: "first bytes again", slot: bob0, side: side0},
				{name: "sidecar malformed", side: []byte(`{"refresh_token_sha256":`)},
				{name: "sidecar gone", gone: true},
				{name: "sidecar back", side: side0},
			}
			for _, step := range steps {
				if step.slot != nil {
					writeFile(t, slot, step.slot)
				}
				if step.side != nil {
					writeFile(t, side, step.side)
				}
				if step.gone {
					require.NoError(t, os.Remove(side))
				}
				for i := 0; i < 2; i++ { // the second time from the memo
					assertAnswersOf(t, f.m, step.name)
				}
			}
		})
	}
}

// assertAnswersOf checks m's answers about bob against the bytes on disk,
// parsed and hashed directly, with no memo on the way.
func assertAnswersOf(t *testing.T, m *Manager, step string) {
	t.Helper()
	slot := m.SlotPath("bob")
	data := readBytes(t, slot)
	ok, why := m.SlotIsFresh("bob")
	wantOK, wantWhy := freshness(m.cfg.format, slot, data, nil, m.cfg.grace, m.cfg.now())
	assert.Equal(t, wantOK, ok, step)
	assert.Equal(t, wantWhy, why, step)
	exp, hasExp := m.SlotExpiry("bob")
	want := m.cfg.format.parseFor(data, credfile.Expiry)
	assert.Equal(t, want.hasExpiry(), hasExp, step)
	assert.True(t, want.expiry.Equal(exp), step)

	stored := ""
	if side, err := os.ReadFile(m.FingerprintPath("bob")); err == nil {
		stored, _ = credfile.Sidecar(side)
	}
	wantID, wantErr := m.verdictFrom("bob", m.cfg.format.parseFor(data, credfile.Identity).fingerprint, stored, nil)
	id, err := m.DetectSlotIdentityDrift("bob")
	assert.Equal(t, wantErr, err, step)
	assert.Equal(t, wantID, id, step)
	assert.Equal(t, m.cfg.format.parseFor(data, credfile.Login).login, m.currentLogin("bob"), step)

	drift, err := m.DetectLiveSlotDrift()
	require.NoError(t, err, step)
	wantDrift := &DriftInfo{LiveHash: hashBytes(readBytes(t, m.LivePath())), SlotHashes: map[string]string{}}
	for _, sub := range m.subs {
		wantDrift.SlotHashes[sub] = hashBytes(readBytes(t, m.SlotPath(sub)))
		if wantDrift.MatchingSlot == "" && wantDrift.SlotHashes[sub] == wantDrift.LiveHash {
			wantDrift.MatchingSlot = sub
		}
	}
	wantDrift.Drift = wantDrift.MatchingSlot == ""
	assert.Equal(t, wantDrift, drift, step)
}

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
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
	data, sideData := readBytes(t, slot), readBytes(t, side)
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
