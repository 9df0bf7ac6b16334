package credslots

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writerAt returns a faultFS that, once, runs write right before the first
// operation named op.
func writerAt(op string, write func()) *faultFS {
	var once sync.Once
	return &faultFS{inner: disk.OS{}, failAt: -1, before: func(o, _ string) {
		if o == op {
			once.Do(write)
		}
	}}
}

// TestSwitchKeepsLiveFileWrittenAfterTheCheck races a CLI refresh between
// the checks and the swap, with the atomic exchange and with the portable
// re-check-then-rename fallback.
func TestSwitchKeepsLiveFileWrittenAfterTheCheck(t *testing.T) {
	for _, noExchange := range []bool{false, true} {
		t.Run(fmt.Sprintf("noExchange=%v", noExchange), func(t *testing.T) {
			var f *fixture
			newer := claudeDoc(fresh, "rt-written-meanwhile")
			ffs := writerAt("symlink", func() { f.refresh(t, newer) })
			ffs.noExchange = noExchange
			f = newFixture(t, withFS(ffs))
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			writeSlot(t, f.slot("alice"), fresh, "rt-alice")
			f.link(t, "alice")

			res, err := f.m.SwitchTo("bob", "rotate")
			require.ErrorIs(t, err, ErrLiveChanged)
			assert.False(t, res.OK)
			got, err := os.ReadFile(f.m.LivePath())
			require.NoError(t, err)
			assert.Equal(t, newer, got, "the newer live file stays live")
			assert.Equal(t, "", f.readlink(t))
			assert.Empty(t, f.hook.get())
			assert.Empty(t, tempLeftovers(t, f.dir))
		})
	}
}

func TestSwitchIntoMissingLiveRefusesWhenOneAppears(t *testing.T) {
	var f *fixture
	login := claudeDoc(fresh, "rt-fresh-login")
	// Appears after the exchange found nothing, before the no-replace rename.
	ffs := writerAt("rename-noreplace", func() { writeFile(t, f.m.LivePath(), login) })
	f = newFixture(t, withFS(ffs))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")

	_, err := f.m.SwitchTo("bob", "first")
	require.ErrorIs(t, err, ErrLiveChanged)
	got, err := os.ReadFile(f.m.LivePath())
	require.NoError(t, err)
	assert.Equal(t, login, got)
	assert.Empty(t, tempLeftovers(t, f.dir))
}

func TestHealLeavesNewerRefreshInPlace(t *testing.T) {
	var f *fixture
	second := claudeDoc(fresh.Add(time.Hour), "rt-bob-3")
	ffs := writerAt("symlink", func() { f.refresh(t, second) })
	f = newFixture(t, withFS(ffs))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob-1")
	f.link(t, "bob")
	first := claudeDoc(fresh, "rt-bob-2")
	f.refresh(t, first)

	res, err := f.m.HealDriftTo("bob")
	require.ErrorIs(t, err, ErrLiveChanged)
	assert.False(t, res.OK)
	live, err := os.ReadFile(f.m.LivePath())
	require.NoError(t, err)
	assert.Equal(t, second, live, "the second refresh stays live")
	slot, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, first, slot, "the validated bytes reached the slot")
	assert.FileExists(t, f.slot("bob")+".prev")
	assert.Empty(t, tempLeftovers(t, f.dir))

	// The next heal picks up the second refresh.
	res, err = f.m.HealDriftTo("bob")
	require.NoError(t, err)
	assert.True(t, res.OK)
	slot, err = os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, second, slot)
}

func TestSwitchReplacingVerifiedCopyRemovesIt(t *testing.T) {
	f := newFixture(t)
	doc := writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeFile(t, f.m.LivePath(), doc)
	_, err := f.m.SwitchTo("bob", "r")
	require.NoError(t, err)
	assert.Equal(t, ".credentials.json.bob", f.readlink(t))
	assert.NoFileExists(t, f.m.LivePath()+".prev", "a copy of a slot needs no backup")
	assert.Empty(t, tempLeftovers(t, f.dir))
}

// TestPortableFallback runs the flows where no atomic exchange exists: the
// live path is re-checked right before a plain rename.
func TestPortableFallback(t *testing.T) {
	f := newFixture(t, withFS(&faultFS{inner: disk.OS{}, failAt: -1, noExchange: true}))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err := f.m.SwitchTo("alice", "first")
	require.NoError(t, err)
	assert.Equal(t, ".credentials.json.alice", f.readlink(t))
	_, err = f.m.SwitchTo("bob", "rotate")
	require.NoError(t, err)
	assert.Equal(t, ".credentials.json.bob", f.readlink(t))
	f.refresh(t, claudeDoc(fresh, "rt-bob-2"))
	_, err = f.m.HealDriftTo("bob")
	require.NoError(t, err)
	assert.Equal(t, ".credentials.json.bob", f.readlink(t))
	assert.Empty(t, tempLeftovers(t, f.dir))
}
