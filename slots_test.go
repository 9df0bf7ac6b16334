package credslots

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	subs := WithSubscriptions("bob", "alice")
	tests := []struct {
		name string
		opts []Option
		want []string // substrings of the message
	}{
		{"no creds dir", []Option{subs}, []string{"creds dir"}},
		{"no subscriptions", []Option{WithCredsDir(dir)}, []string{"subscriptions must be non-empty"}},
		{"empty subscription list", []Option{WithCredsDir(dir), WithSubscriptions()}, []string{"subscriptions must be non-empty"}},
		{"empty sub", []Option{WithCredsDir(dir), WithSubscriptions("bob", "")}, []string{"empty"}},
		{"dot sub", []Option{WithCredsDir(dir), WithSubscriptions(".")}, []string{`"."`}},
		{"dotdot sub", []Option{WithCredsDir(dir), WithSubscriptions("..")}, []string{`".."`}},
		{"slash sub", []Option{WithCredsDir(dir), WithSubscriptions("a/b")}, []string{`"a/b"`}},
		{"backslash sub", []Option{WithCredsDir(dir), WithSubscriptions(`a\b`)}, []string{"separator"}},
		{"nul sub", []Option{WithCredsDir(dir), WithSubscriptions("a\x00b")}, []string{"NUL"}},
		{"duplicate sub", []Option{WithCredsDir(dir), WithSubscriptions("bob", "alice", "bob")}, []string{"duplicate", `"bob"`}},
		{"slot template without placeholder", []Option{WithCredsDir(dir), subs, WithSlotTemplate(".credentials.json.x")}, []string{"slot template", "{sub}"}},
		{"fingerprint template without placeholder", []Option{WithCredsDir(dir), subs, WithFingerprintTemplate("fp.json")}, []string{"fingerprint template", "{sub}"}},
		{"absolute slot template", []Option{WithCredsDir(dir), subs, WithSlotTemplate("/etc/{sub}")}, []string{"slot template", "relative"}},
		{"escaping slot template", []Option{WithCredsDir(dir), subs, WithSlotTemplate("../{sub}.json")}, []string{"slot template", ".."}},
		{"escaping fingerprint template", []Option{WithCredsDir(dir), subs, WithFingerprintTemplate("a/../../{sub}")}, []string{"fingerprint template", ".."}},
		{"live name with separator", []Option{WithCredsDir(dir), subs, WithLiveName("x/.credentials.json")}, []string{"live name"}},
		{"empty live name", []Option{WithCredsDir(dir), subs, WithLiveName("")}, []string{"live name"}},
		{"negative grace", []Option{WithCredsDir(dir), subs, WithGrace(-time.Second)}, []string{"grace"}},
		{"negative lock timeout", []Option{WithCredsDir(dir), subs, WithLockTimeout(-time.Second)}, []string{"lock timeout"}},
		{"nil format", []Option{WithCredsDir(dir), subs, WithFormat(nil)}, []string{"format"}},
		{"slot equals live", []Option{WithCredsDir(dir), WithSubscriptions("json"), WithSlotTemplate(".credentials.{sub}")}, []string{"same path"}},
		{"fingerprint equals slot", []Option{WithCredsDir(dir), subs, WithFingerprintTemplate(".credentials.json.{sub}")}, []string{"same path"}},
		{"slot equals another slot's backup", []Option{WithCredsDir(dir), WithSubscriptions("a", "a.prev")}, []string{"same path"}},
		{"slot equals lock file", []Option{WithCredsDir(dir), WithSubscriptions(".lock"), WithSlotTemplate(".credentials.json{sub}"), WithFingerprintTemplate("fp.{sub}")}, []string{"same path"}},
		{"slot equals live backup", []Option{WithCredsDir(dir), WithSubscriptions("prev")}, []string{`"prev"`, "not allowed"}},
		{"sub named lock", []Option{WithCredsDir(dir), WithSubscriptions("lock")}, []string{`"lock"`, "not allowed"}},
		{"sub with the temporary marker", []Option{WithCredsDir(dir), WithSubscriptions("x.credslots.tmp.y")}, []string{"temporary"}},
		{"sub with the link marker", []Option{WithCredsDir(dir), WithSubscriptions("x.credslots.tmp-link.y")}, []string{"temporary"}},
		{"sub with a newline", []Option{WithCredsDir(dir), WithSubscriptions("bob\nalice")}, []string{"control"}},
		{"sub with a terminal escape", []Option{WithCredsDir(dir), WithSubscriptions("bob\x1b[31m")}, []string{"control"}},
		{"sub not UTF-8", []Option{WithCredsDir(dir), WithSubscriptions("bob\xff")}, []string{"UTF-8"}},
		{"sub past the name limit", []Option{WithCredsDir(dir), WithSubscriptions(strings.Repeat("b", 250))}, []string{"255"}},
		{"sub too long for its backups", []Option{WithCredsDir(dir), WithSubscriptions(strings.Repeat("b", 200))}, []string{"no room"}},
		{"template into the private directory", []Option{WithCredsDir(dir), subs, WithSlotTemplate(".credslots/{sub}")}, []string{"private directory"}},
		{"slot equals the private directory", []Option{WithCredsDir(dir), WithSubscriptions(".credslots"), WithSlotTemplate("{sub}"), WithFingerprintTemplate("fp.{sub}")}, []string{"private directory"}},
		{"slot equals a CLI lock", []Option{WithCredsDir(dir), WithSubscriptions(".oauth_refresh.lock"), WithSlotTemplate("{sub}"), WithFingerprintTemplate("fp.{sub}")}, []string{"same path"}},
		{"no backup generations", []Option{WithCredsDir(dir), subs, WithBackupGenerations(0)}, []string{"generations"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.opts...)
			require.Error(t, err)
			assert.Nil(t, m)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestNewDefaultsAndPaths(t *testing.T) {
	dir := t.TempDir()
	m, err := New(WithCredsDir(dir), WithSubscriptions("bob", "alice"))
	require.NoError(t, err)
	assert.Equal(t, dir, m.CredsDir())
	assert.Equal(t, []string{"bob", "alice"}, m.Subscriptions())
	assert.Equal(t, filepath.Join(dir, ".credentials.json"), m.LivePath())
	assert.Equal(t, filepath.Join(dir, ".credentials.json.bob"), m.SlotPath("bob"))
	assert.Equal(t, filepath.Join(dir, ".credentials.json.bob.fingerprint.json"), m.FingerprintPath("bob"))
	assert.Equal(t, ClaudeCode, m.cfg.format)

	subs := m.Subscriptions()
	subs[0] = "mallory"
	assert.Equal(t, []string{"bob", "alice"}, m.Subscriptions(), "Subscriptions must return a copy")

	m2, err := New(WithCredsDir(dir), WithSubscriptions("bob"), WithSlotTemplate("slots/{sub}.json"),
		WithLiveName("live.json"), WithFingerprintTemplate("fp/{sub}.sha"))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "slots", "bob.json"), m2.SlotPath("bob"))
	assert.Equal(t, filepath.Join(dir, "fp", "bob.sha"), m2.FingerprintPath("bob"))
	assert.Equal(t, filepath.Join(dir, "live.json"), m2.LivePath())
}

func TestActiveSubscription(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, f *fixture)
		wantSub string
		wantOK  bool
	}{
		{"missing live", func(t *testing.T, f *fixture) {}, "", false},
		{"symlink to bob", func(t *testing.T, f *fixture) {
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			f.link(t, "bob")
		}, "bob", true},
		{"symlink to alice", func(t *testing.T, f *fixture) {
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			writeSlot(t, f.slot("alice"), fresh, "rt-alice")
			f.link(t, "alice")
		}, "alice", true},
		{"absolute symlink to erik", func(t *testing.T, f *fixture) {
			writeSlot(t, f.slot("erik"), fresh, "rt-erik")
			require.NoError(t, os.Symlink(f.slot("erik"), f.m.LivePath()))
		}, "erik", true},
		{"regular file equal to a slot", func(t *testing.T, f *fixture) {
			doc := writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			writeFile(t, f.m.LivePath(), doc)
		}, "", false},
		{"broken symlink", func(t *testing.T, f *fixture) {
			f.link(t, "bob")
		}, "", false},
		{"symlink to an unconfigured file", func(t *testing.T, f *fixture) {
			writeSlot(t, filepath.Join(f.dir, ".credentials.json.zed"), fresh, "rt-zed")
			require.NoError(t, os.Symlink(".credentials.json.zed", f.m.LivePath()))
		}, "", false},
		{"symlink to a directory", func(t *testing.T, f *fixture) {
			require.NoError(t, os.Mkdir(f.slot("bob"), 0o700))
			f.link(t, "bob")
		}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.setup(t, f)
			sub, ok := f.m.ActiveSubscription()
			assert.Equal(t, tt.wantSub, sub)
			assert.Equal(t, tt.wantOK, ok)
		})
	}
}

func TestActiveSubscriptionWithDirectoryTemplate(t *testing.T) {
	f := newFixture(t, WithSlotTemplate("slots/{sub}.json"))
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "alice")
	assert.Equal(t, filepath.Join("slots", "alice.json"), f.readlink(t))
	sub, ok := f.m.ActiveSubscription()
	assert.True(t, ok)
	assert.Equal(t, "alice", sub)
}

func TestAvailableSubscriptions(t *testing.T) {
	f := newFixture(t)
	assert.Empty(t, f.m.AvailableSubscriptions())
	writeSlot(t, f.slot("erik"), stale, "rt-erik")
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	assert.Equal(t, []string{"bob", "erik"}, f.m.AvailableSubscriptions(), "configured order, freshness not checked")
}

func TestReadSlotExpiry(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		want    time.Time
		ok      bool
	}{
		{"integer ms", `{"claudeAiOauth":{"expiresAt":1767225600000}}`, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"fractional ms", `{"claudeAiOauth":{"expiresAt":1767225600000.5}}`, time.Date(2026, 1, 1, 0, 0, 0, 500000, time.UTC), true},
		{"exponent", `{"claudeAiOauth":{"expiresAt":1.7672256e12}}`, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"zero is 1970", `{"claudeAiOauth":{"expiresAt":0}}`, time.Unix(0, 0).UTC(), true},
		{"year 1", `{"claudeAiOauth":{"expiresAt":-62135596800000}}`, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"before year 1", `{"claudeAiOauth":{"expiresAt":-62135596800001}}`, time.Time{}, false},
		{"after year 9999", `{"claudeAiOauth":{"expiresAt":253402300800000}}`, time.Time{}, false},
		{"huge", `{"claudeAiOauth":{"expiresAt":1e300}}`, time.Time{}, false},
		{"beyond float64", `{"claudeAiOauth":{"expiresAt":1e400}}`, time.Time{}, false},
		{"string", `{"claudeAiOauth":{"expiresAt":"1767225600000"}}`, time.Time{}, false},
		{"bool", `{"claudeAiOauth":{"expiresAt":true}}`, time.Time{}, false},
		{"null", `{"claudeAiOauth":{"expiresAt":null}}`, time.Time{}, false},
		{"missing", `{"claudeAiOauth":{}}`, time.Time{}, false},
		{"payload not object", `{"claudeAiOauth":[1767225600000]}`, time.Time{}, false},
		{"payload null", `{"claudeAiOauth":null}`, time.Time{}, false},
		{"root array", `[{"claudeAiOauth":{"expiresAt":1767225600000}}]`, time.Time{}, false},
		{"root string", `"x"`, time.Time{}, false},
		{"malformed", `{"claudeAiOauth":{"expiresAt":`, time.Time{}, false},
		{"trailing garbage", `{"claudeAiOauth":{"expiresAt":1767225600000}} x`, time.Time{}, false},
		{"empty file", ``, time.Time{}, false},
		{"binary", "\x00\xff\xfe", time.Time{}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "slot"+string(rune('a'+i)))
			writeFile(t, path, []byte(tt.content))
			got, ok := ReadSlotExpiry(path)
			assert.Equal(t, tt.ok, ok)
			assert.True(t, tt.want.Equal(got), "got %s want %s", got, tt.want)
			if ok {
				assert.Equal(t, time.UTC, got.Location())
			}
		})
	}
	_, ok := ReadSlotExpiry(filepath.Join(dir, "absent"))
	assert.False(t, ok)
}

func TestSlotIsFreshReasons(t *testing.T) {
	grace := 5 * time.Minute
	tests := []struct {
		name   string
		expiry *time.Time
		raw    string
		fresh  bool
		reason string
	}{
		{name: "missing", fresh: false, reason: "slot missing: s"},
		{name: "no expiry", raw: `{"claudeAiOauth":{}}`, reason: "unreadable or no expiresAt in s"},
		{name: "malformed", raw: `{`, reason: "unreadable or no expiresAt in s"},
		{name: "expired 90m", expiry: ptr(testNow.Add(-90*time.Minute - 30*time.Second)), reason: "expired 90m ago (at 2026-01-01T10:29:30Z)"},
		{name: "expired exactly now", expiry: ptr(testNow), reason: "expired 0m ago (at 2026-01-01T12:00:00Z)"},
		{name: "within grace", expiry: ptr(testNow.Add(2*time.Minute + 1500*time.Millisecond)), reason: "expires within grace (121s left, at 2026-01-01T12:02:01Z)"},
		{name: "at grace boundary", expiry: ptr(testNow.Add(grace)), reason: "expires within grace (300s left, at 2026-01-01T12:05:00Z)"},
		{name: "just past grace", expiry: ptr(testNow.Add(grace + time.Millisecond)), fresh: true, reason: "valid until 2026-01-01T12:05:00Z"},
		{name: "valid", expiry: ptr(testNow.Add(8 * time.Hour)), fresh: true, reason: "valid until 2026-01-01T20:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := t.TempDir()
			path := filepath.Join(sub, "s")
			switch {
			case tt.expiry != nil:
				writeSlot(t, path, *tt.expiry, "rt")
			case tt.raw != "":
				writeFile(t, path, []byte(tt.raw))
			}
			ok, reason := SlotIsFresh(path, grace, testNow)
			assert.Equal(t, tt.fresh, ok)
			assert.Equal(t, tt.reason, reason)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestManagerSlotIsFreshUsesConfiguredGraceAndClock(t *testing.T) {
	f := newFixture(t, WithGrace(time.Hour))
	writeSlot(t, f.slot("bob"), testNow.Add(30*time.Minute), "rt-bob")
	ok, reason := f.m.SlotIsFresh("bob")
	assert.False(t, ok)
	assert.Equal(t, "expires within grace (1800s left, at 2026-01-01T12:30:00Z)", reason)

	ok, reason = f.m.SlotIsFresh("alice")
	assert.False(t, ok)
	assert.Equal(t, "slot missing: .credentials.json.alice", reason)

	ok, reason = f.m.SlotIsFresh("zed")
	assert.False(t, ok)
	assert.Contains(t, reason, `unknown subscription: "zed"`)

	exp, ok := f.m.SlotExpiry("bob")
	assert.True(t, ok)
	assert.True(t, exp.Equal(testNow.Add(30*time.Minute)))
	_, ok = f.m.SlotExpiry("zed")
	assert.False(t, ok)
	_, ok = f.m.SlotExpiry("alice")
	assert.False(t, ok)
}

func TestSentinelsAreDistinct(t *testing.T) {
	all := []error{ErrInvalidConfig, ErrUnknownSubscription, ErrDeferred, ErrSlotMissing, ErrNotFresh,
		ErrNoDrift, ErrUnhealable, ErrIdentityDrift, ErrLiveDrifted, ErrLiveChanged, ErrLockTimeout}
	for i, a := range all {
		for j, b := range all {
			if i != j {
				assert.False(t, errors.Is(a, b), "%v is %v", a, b)
			}
		}
		assert.False(t, strings.Contains(a.Error(), "credslots"), "sentinel text is wrapped, not prefixed")
	}
}

// appendRFC3339 writes what time.RFC3339 writes, over the years the
// formats read.
func TestAppendRFC3339(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 1, 1, 20, 0, 0, 0, time.UTC), time.Date(987, 6, 5, 4, 3, 2, 1, time.FixedZone("x", 3600)),
		fresh, stale, time.UnixMilli(1767225600123).In(time.FixedZone("y", -7*3600)),
		time.Date(2000, 2, 29, 12, 0, 0, 0, time.UTC), time.Date(1900, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(1600, 2, 29, 1, 2, 3, 0, time.UTC),
	} {
		assert.Equal(t, tm.UTC().Format(time.RFC3339), string(appendRFC3339(nil, tm)), "%v", tm)
	}
	// Every day of the years 1 to 9999, at a time of day that moves.
	for tm := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC); tm.Year() < 10000; tm = tm.Add(24*time.Hour + 61*time.Second) {
		if got, want := string(appendRFC3339(nil, tm)), tm.Format(time.RFC3339); got != want {
			require.Equal(t, want, got)
		}
	}
	assert.Equal(t, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), int64(year2000))
	assert.Equal(t, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), int64(year2200))
}
