package credslots

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Spec 22: "A creds dir that the CLI itself works in never makes a
// credslots change fail". Claude Code goes on without the legacy lock when
// its mkdir fails with ENAMETOOLONG, among others (interop/README.md): a
// creds dir whose base name is 251 to 255 bytes is one it works in, though
// <realpath(D)>.lock is longer than a name may be.
func TestALegacyLockNameTooLongDoesNotFailTheSwitch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("c", 252))
	require.NoError(t, os.Mkdir(dir, 0o700))
	f := newFixture(t, WithCredsDir(dir))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	_, err := f.m.SwitchTo("bob", "r")
	require.NoError(t, err, "Claude Code works in this dir without the legacy lock; so does credslots")
	active, ok := f.m.ActiveSubscription()
	assert.True(t, ok)
	assert.Equal(t, "bob", active)
}
