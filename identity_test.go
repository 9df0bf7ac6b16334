package credslots

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestComputeSlotFingerprint(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		want    string
		ok      bool
	}{
		{"refresh token", `{"claudeAiOauth":{"refreshToken":"rt-bob"}}`, hashBytes([]byte("rt-bob")), true},
		{"utf-8 token", `{"claudeAiOauth":{"refreshToken":"r\u00e9"}}`, hashBytes([]byte("ré")), true},
		{"empty token", `{"claudeAiOauth":{"refreshToken":""}}`, "", false},
		{"numeric token", `{"claudeAiOauth":{"refreshToken":42}}`, "", false},
		{"no token", `{"claudeAiOauth":{"accessToken":"a"}}`, "", false},
		{"no payload", `{"refreshToken":"rt"}`, "", false},
		{"malformed", `{"claudeAiOauth":`, "", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := dir + "/f" + string(rune('a'+i))
			writeFile(t, path, []byte(tt.content))
			got, ok := ComputeSlotFingerprint(path)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
	_, ok := ComputeSlotFingerprint(dir + "/absent")
	assert.False(t, ok)
	// A known vector, computed outside Go: sha256("rt-bob").
	assert.Equal(t, "b9de5f24e89f54d584cf14a42783ad8a00b06e0071fa78ee8db84d8d416085ac", hashBytes([]byte("rt-bob")))
}

func TestCaptureSlotFingerprint(t *testing.T) {
	f := newFixture(t)

	_, err := f.m.CaptureSlotFingerprint("zed")
	assert.ErrorIs(t, err, ErrUnknownSubscription)

	fp, err := f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	assert.Empty(t, fp, "missing slot: nothing to capture")
	assert.NoFileExists(t, f.m.FingerprintPath("bob"))
	ents, err := os.ReadDir(f.dir)
	require.NoError(t, err)
	assert.Empty(t, ents, "nothing at all is written")

	writeFile(t, f.slot("alice"), []byte(`{"claudeAiOauth":{"expiresAt":1}}`))
	fp, err = f.m.CaptureSlotFingerprint("alice")
	require.NoError(t, err)
	assert.Empty(t, fp, "no refresh token: nothing to capture")
	assert.NoFileExists(t, f.m.FingerprintPath("alice"))

	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	fp, err = f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	assert.Equal(t, hashBytes([]byte("rt-bob")), fp)

	fi, err := os.Stat(f.m.FingerprintPath("bob"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	raw, err := os.ReadFile(f.m.FingerprintPath("bob"))
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	assert.Equal(t, map[string]any{
		"captured_at":          "2026-01-01T12:00:00Z",
		"refresh_token_sha256": fp,
		"slot":                 "bob",
	}, doc)
	assert.NotContains(t, string(raw), "rt-bob", "the sidecar never holds the token")

	stored, ok := f.m.ReadStoredFingerprint("bob")
	assert.True(t, ok)
	assert.Equal(t, fp, stored)
	assert.Empty(t, tempLeftovers(t, f.dir))
}

func TestReadStoredFingerprint(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string
		ok      bool
	}{
		{"valid", `{"captured_at":"x","refresh_token_sha256":"abc","slot":"bob"}`, "abc", true},
		{"only the hash", `{"refresh_token_sha256":"abc"}`, "abc", true},
		{"empty hash", `{"refresh_token_sha256":""}`, "", false},
		{"numeric hash", `{"refresh_token_sha256":1}`, "", false},
		{"null hash", `{"refresh_token_sha256":null}`, "", false},
		{"no hash", `{"slot":"bob"}`, "", false},
		{"array", `["abc"]`, "", false},
		{"malformed", `{"refresh_token_sha256":"abc"`, "", false},
		{"empty file", ``, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			writeFile(t, f.m.FingerprintPath("bob"), []byte(tt.content))
			got, ok := f.m.ReadStoredFingerprint("bob")
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
	f := newFixture(t)
	_, ok := f.m.ReadStoredFingerprint("bob")
	assert.False(t, ok, "missing sidecar")
	_, ok = f.m.ReadStoredFingerprint("zed")
	assert.False(t, ok, "unknown sub")
}

func TestDetectSlotIdentityDriftMatrix(t *testing.T) {
	tests := []struct {
		name    string
		stored  string // refresh token captured, "" for none
		current string // refresh token in the slot, "" for no slot
		drift   bool
		reason  string
	}{
		{"none/none", "", "", false, "no fingerprint stored and slot missing/unreadable"},
		{"none/some", "", "rt-1", false, "no fingerprint stored yet — call CaptureSlotFingerprint after a fresh login"},
		{"some/none", "rt-1", "", true, "slot is missing or has no refresh token; cannot verify identity"},
		{"a/b", "rt-1", "rt-2", true, "refresh token changed since last capture — slot identity may have been replaced"},
		{"a/a", "rt-1", "rt-1", false, "fingerprint matches"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			var storedFP, currentFP string
			if tt.stored != "" {
				writeSlot(t, f.slot("bob"), fresh, tt.stored)
				fp, err := f.m.CaptureSlotFingerprint("bob")
				require.NoError(t, err)
				storedFP = fp
				require.NoError(t, os.Remove(f.slot("bob")))
			}
			if tt.current != "" {
				writeSlot(t, f.slot("bob"), fresh, tt.current)
				currentFP = hashBytes([]byte(tt.current))
			}
			info, err := f.m.DetectSlotIdentityDrift("bob")
			require.NoError(t, err)
			assert.Equal(t, IdentityDriftInfo{
				Drift:              tt.drift,
				Sub:                "bob",
				StoredFingerprint:  storedFP,
				CurrentFingerprint: currentFP,
				Reason:             tt.reason,
			}, info)
		})
	}
}

func TestDetectSlotIdentityDriftSlotWithoutRefreshToken(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-1")
	_, err := f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	writeSlot(t, f.slot("bob"), fresh, "") // refresh token field absent
	info, err := f.m.DetectSlotIdentityDrift("bob")
	require.NoError(t, err)
	assert.True(t, info.Drift)
	assert.Equal(t, "slot is missing or has no refresh token; cannot verify identity", info.Reason)
}

func TestDetectSlotIdentityDriftUnknownSub(t *testing.T) {
	f := newFixture(t)
	info, err := f.m.DetectSlotIdentityDrift("zed")
	assert.ErrorIs(t, err, ErrUnknownSubscription)
	assert.False(t, info.Drift)
}

func TestCaptureUsesClock(t *testing.T) {
	at := time.Date(2030, 5, 6, 7, 8, 9, 0, time.FixedZone("X", 3600))
	f := newFixture(t, WithClock(func() time.Time { return at }))
	writeSlot(t, f.slot("bob"), at.Add(time.Hour), "rt")
	_, err := f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	raw, err := os.ReadFile(f.m.FingerprintPath("bob"))
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"captured_at": "2030-05-06T06:08:09Z"`)
}
