package credslots

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bob's refresh is live (the only copy of rt-bob-2) and no .claude.json
// shows an account; a forced switch to alice keeps it as
// .credentials.json.prev and journals it as bob's. Routine records then
// rotate the journal: the keep record, naming bob, stays, and the kept
// copy is still refused to alice.
func TestAKeepRecordNamingOnlyASubOutlivesARotation(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	bobNew := claudeDoc(fresh.Add(time.Hour), "rt-bob-2")
	f.refreshAt(t, bobNew, later())
	_, err = f.m.SwitchTo("alice", "rotate", Force())
	require.NoError(t, err)

	err = f.m.Restore(".credentials.json.prev", "alice")
	require.ErrorIs(t, err, ErrIdentityDrift, "before the rotation: refused, bob's")

	// Routine records (rests, as observe writes them) grow the journal past
	// its rotation size; the next record rotates it.
	until := testNow.Add(time.Hour)
	size := len(journalBytes(t, f.m))
	for rotated := false; !rotated; {
		require.NoError(t, f.m.Rest("erik", until, strings.Repeat("quota window reached; resting ", 4)))
		n := len(journalBytes(t, f.m))
		rotated, size = n < size, n
	}
	require.True(t, strings.Contains(string(journalBytes(t, f.m)), `"op":"keep"`), "the rotation kept the keep record")

	err = f.m.Restore(".credentials.json.prev", "alice")
	assert.ErrorIs(t, err, ErrIdentityDrift, "after the rotation: bob's only newest login must not go into alice's slot")
	got, _ := os.ReadFile(f.slot("alice"))
	assert.NotEqual(t, bobNew, got, "alice's slot holds bob's login")
}
