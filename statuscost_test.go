package credslots

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDiscoveryTrustsACapturedSlot: a slot with its sidecar beside it is
// discovered without its content being judged, and Status then reports a
// content that is no credential; the same file without a sidecar is not
// discovered (the check discovery still makes where it is needed).
func TestDiscoveryTrustsACapturedSlot(t *testing.T) {
	f := newFixture(t)
	for _, sub := range []string{"bob", "alice", "erik"} {
		writeSlot(t, f.slot(sub), testNow.Add(time.Hour), "rt-"+sub)
	}
	f.link(t, "bob")
	_, err := f.m.CaptureSlotFingerprint("erik")
	require.NoError(t, err)
	writeFile(t, f.slot("erik"), []byte(`{"theme":"dark"}`))
	writeFile(t, filepath.Join(f.dir, ".credentials.json.settings"), []byte(`{"theme":"dark"}`))

	subs, err := DiscoverSubscriptions(f.dir, DefaultSlotTemplate)
	require.NoError(t, err)
	assert.Equal(t, []string{"alice", "bob", "erik"}, subs, "captured erik is listed, settings is not")

	st, err := f.m.Status()
	require.NoError(t, err)
	assert.Contains(t, st.Problems, "slot erik (.credentials.json.erik) is not a claude credential at all: no claudeAiOauth object")

	require.NoError(t, os.Remove(f.m.FingerprintPath("erik")))
	subs, err = DiscoverSubscriptions(f.dir, DefaultSlotTemplate)
	require.NoError(t, err)
	assert.Equal(t, []string{"alice", "bob"}, subs, "without its sidecar, erik's content is judged again")
}

// TestDiscoveryKeepsACapturedSlotNamedLikeACopy: a captured slot named like
// a copy or a temporary (sub old, tmpwork) is listed; the same names
// without a sidecar are judged copies, as before.
func TestDiscoveryKeepsACapturedSlotNamedLikeACopy(t *testing.T) {
	f := newFixture(t, WithSubscriptions("bob", "old", "tmpwork"))
	for _, sub := range []string{"bob", "old", "tmpwork"} {
		writeSlot(t, f.slot(sub), testNow.Add(time.Hour), "rt-"+sub)
	}
	f.link(t, "bob")
	writeFile(t, filepath.Join(f.dir, ".credentials.json.bob.bak"), mustRead(t, f.slot("bob")))
	subs, err := DiscoverSubscriptions(f.dir, DefaultSlotTemplate)
	require.NoError(t, err)
	assert.Equal(t, []string{"bob"}, subs, "uncaptured, old and tmpwork look like copies")

	for _, sub := range []string{"old", "tmpwork"} {
		_, err := f.m.CaptureSlotFingerprint(sub)
		require.NoError(t, err)
	}
	subs, err = DiscoverSubscriptions(f.dir, DefaultSlotTemplate)
	require.NoError(t, err)
	assert.Equal(t, []string{"bob", "old", "tmpwork"}, subs, "captured, they are slots; bob.bak is still a copy")
}

// TestNewDescribesDuplicates: the paths New derives are described, a sub's
// quoted, only when two are the same.
func TestNewDescribesDuplicates(t *testing.T) {
	dir := t.TempDir()
	_, err := New(WithCredsDir(dir), WithSubscriptions("a", "a.prev"))
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), `the backup of slot "a" and slot "a.prev" are the same path `+filepath.Join(dir, ".credentials.json.a.prev"))

	_, err = New(WithCredsDir(dir), WithSubscriptions("json"), WithSlotTemplate(".credentials.{sub}"))
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), `the live path and slot "json" are the same path`)
}

// TestGenerationNameFits: the shortcut agrees with building the name, on
// both sides of the limit, with and without bytes that escaping triples.
func TestGenerationNameFits(t *testing.T) {
	for _, unit := range []string{"b", "%", "b/", " b"} {
		for n := 1; len(strings.Repeat(unit, n)) <= 300; n++ {
			rel := strings.Repeat(unit, n)
			want := len(generationName(rel, time.Now())) <= nameMax
			assert.Equal(t, want, generationNameFits(rel), "%d bytes of %q", len(rel), unit)
		}
	}
}

// TestStatusWithoutLeasesDir: with no leases directory Status probes no
// lease lock and shows no lease; once the directory exists, each sub's
// lock is probed (lease_test.go shows a held lease).
func TestStatusWithoutLeasesDir(t *testing.T) {
	probes := func(log []string) int {
		n := 0
		for _, op := range log {
			if strings.HasPrefix(op, "lockopen ") {
				n++
			}
		}
		return n
	}
	m, ffs, subs := countingFixture(t, 3)
	_, err := os.Lstat(m.leasesDir())
	require.ErrorIs(t, err, os.ErrNotExist)
	st, err := m.Status()
	require.NoError(t, err)
	require.Len(t, st.Slots, len(subs))
	for _, s := range st.Slots {
		assert.Nil(t, s.Lease, s.Sub)
	}
	assert.Zero(t, probes(ops(ffs)), "no leases directory: no lease lock probed")

	require.NoError(t, os.Mkdir(m.leasesDir(), 0o700))
	_, err = m.Status()
	require.NoError(t, err)
	assert.Equal(t, len(subs), probes(ops(ffs)), "each sub's lease lock probed once")
}

// TestStatusFailedCaptureDecoded: Status decodes the journal only when a
// record may be a failure, and finds a failed capture however its phase is
// spelled.
func TestStatusFailedCaptureDecoded(t *testing.T) {
	tests := []struct {
		name, line string
		want       bool
	}{
		{"failed", `{"time":"2026-01-01T00:00:00Z","op":"capture","phase":"failed","sub":"bob","error":"credslots: disk full"}`, true},
		{"failed, escaped", `{"time":"2026-01-01T00:00:00Z","op":"capture","phase":"f\u0061iled","sub":"bob","error":"credslots: disk full"}`, true},
		{"done", `{"time":"2026-01-01T00:00:00Z","op":"capture","phase":"done","sub":"bob"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, subs := countingFixture(t, 3)
			line := strings.ReplaceAll(tt.line, `"bob"`, `"`+subs[0]+`"`)
			f, err := os.OpenFile(m.journalPath(), os.O_APPEND|os.O_WRONLY, 0o600)
			require.NoError(t, err)
			_, err = f.WriteString(line + "\n")
			require.NoError(t, err)
			require.NoError(t, f.Close())
			st, err := m.Status()
			require.NoError(t, err)
			problem := "slot " + subs[0] + ": its fingerprint capture after the last change failed (disk full): run capture " + subs[0]
			if tt.want {
				assert.Contains(t, st.Problems, problem)
			} else {
				assert.NotContains(t, st.Problems, problem)
			}
		})
	}
	assert.False(t, mayRecordFailure([]byte(`{"op":"switch","phase":"done"}`+"\n")))
	assert.True(t, mayRecordFailure([]byte(`{"reason":"a \u003e b"}`)), "any escape is decoded")
}

// TestDiscoveryTwoPlaceholders: with {sub} twice in the file name, a name
// is a slot only when it is the template expanded (the check a single
// {sub} makes unnecessary).
func TestDiscoveryTwoPlaceholders(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "x.{sub}.json"), claudeDoc(testNow, "rt-x"))
	writeFile(t, filepath.Join(dir, "y.y.json"), claudeDoc(testNow, "rt-y"))
	subs, err := DiscoverSubscriptions(dir, "{sub}.{sub}.json")
	require.NoError(t, err)
	assert.Empty(t, subs, "y.y.json is not prefix, sub and suffix of the cut template; x.{sub}.json expands to x.x.json")
}

// TestOctal4: the mode column as fmt writes it.
func TestOctal4(t *testing.T) {
	for _, perm := range []os.FileMode{0, 0o600, 0o644, 0o7, 0o777, 0o4755, 0o7777, 0o17777} {
		assert.Equal(t, fmt.Sprintf("%04o", perm), octal4(perm), "%o", perm)
	}
}
