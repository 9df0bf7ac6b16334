package credslots

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The live symlink's target for a sub is the slot relative to the creds
// dir: the fast path gives what filepath.Rel gives, for every template
// shape and creds dir spelling.
func TestSymlinkTargetIsTheSlotRelativeToTheCredsDir(t *testing.T) {
	base := t.TempDir()
	for _, tc := range []struct{ dir, tmpl string }{
		{base, ".credentials.json.{sub}"},
		{base + "/", ".credentials.json.{sub}"},
		{base + "/./x/..", "slots/{sub}.json"},
		{base, "a/b/{sub}"},
		{"/", ".credentials.json.{sub}"},
	} {
		m, err := New(WithCredsDir(tc.dir), WithSubscriptions("bob"), WithSlotTemplate(tc.tmpl))
		require.NoError(t, err, "%+v", tc)
		want, err := filepath.Rel(m.dir, m.SlotPath("bob"))
		require.NoError(t, err)
		assert.Equal(t, want, m.symlinkTarget("bob"), "%+v", tc)
	}
}

func TestJoinLocalIsJoin(t *testing.T) {
	for _, tc := range []struct{ dir, rel string }{
		{"/a/b", "c"}, {"/a/b", "c/d"}, {"/", "c"}, {"/a", "c//d"}, {"/a", "c/"}, {"a", "c/./d"}, {".", "c"}, {"/a", "."}, {"/a", ".."},
	} {
		assert.Equal(t, filepath.Join(tc.dir, tc.rel), joinLocal(tc.dir, tc.rel), "%+v", tc)
	}
}
