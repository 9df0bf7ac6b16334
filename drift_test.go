package credslots

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDetectLiveSlotDrift(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T, f *fixture)
		wantNil   bool
		drift     bool
		matching  string
		emptyHash bool
		slots     []string // subs expected in SlotHashes
	}{
		{name: "no live path", setup: func(t *testing.T, f *fixture) {
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		}, wantNil: true},
		{name: "symlink to a slot", setup: func(t *testing.T, f *fixture) {
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			writeSlot(t, f.slot("alice"), fresh, "rt-alice")
			f.link(t, "alice")
		}, matching: "alice", slots: []string{"bob", "alice"}},
		{name: "regular file equal to a slot", setup: func(t *testing.T, f *fixture) {
			doc := writeSlot(t, f.slot("erik"), fresh, "rt-erik")
			writeFile(t, f.m.LivePath(), doc)
		}, matching: "erik", slots: []string{"erik"}},
		{name: "first configured match wins", setup: func(t *testing.T, f *fixture) {
			doc := writeSlot(t, f.slot("erik"), fresh, "rt-same")
			writeFile(t, f.slot("alice"), doc)
			f.link(t, "erik")
		}, matching: "alice", slots: []string{"alice", "erik"}},
		{name: "refreshed regular file", setup: func(t *testing.T, f *fixture) {
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			f.link(t, "bob")
			f.refresh(t, claudeDoc(fresh, "rt-bob-2"))
		}, drift: true, slots: []string{"bob"}},
		{name: "broken symlink", setup: func(t *testing.T, f *fixture) {
			writeSlot(t, f.slot("alice"), fresh, "rt-alice")
			f.link(t, "bob")
		}, drift: true, emptyHash: true, slots: []string{"alice"}},
		{name: "no slots at all", setup: func(t *testing.T, f *fixture) {
			writeFile(t, f.m.LivePath(), claudeDoc(fresh, "rt"))
		}, drift: true, slots: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.setup(t, f)
			info, err := f.m.DetectLiveSlotDrift()
			require.NoError(t, err)
			if tt.wantNil {
				assert.Nil(t, info)
				return
			}
			require.NotNil(t, info)
			assert.Equal(t, tt.drift, info.Drift)
			assert.Equal(t, tt.matching, info.MatchingSlot)
			assert.Equal(t, tt.emptyHash, info.LiveHash == "")
			assert.NotNil(t, info.SlotHashes)
			assert.Len(t, info.SlotHashes, len(tt.slots))
			for _, sub := range tt.slots {
				data, err := os.ReadFile(f.slot(sub))
				require.NoError(t, err)
				assert.Equal(t, hashBytes(data), info.SlotHashes[sub])
			}
			if !tt.emptyHash {
				data, err := os.ReadFile(f.m.LivePath())
				require.NoError(t, err)
				assert.Equal(t, hashBytes(data), info.LiveHash)
				assert.Len(t, info.LiveHash, 64)
			}
		})
	}
}

func TestDetectLiveSlotDriftUnreadableLive(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, os.Mkdir(f.m.LivePath(), 0o700))
	info, err := f.m.DetectLiveSlotDrift()
	assert.Error(t, err)
	assert.Nil(t, info)

	g := newFixture(t)
	require.NoError(t, os.Mkdir(filepath.Join(g.dir, "d"), 0o700))
	require.NoError(t, os.Symlink("d", g.m.LivePath()))
	info, err = g.m.DetectLiveSlotDrift()
	assert.Error(t, err, "a symlink to a directory is present but unreadable")
	assert.Nil(t, info)
}

func TestDetectLiveSlotDriftSkipsUnreadableSlots(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	require.NoError(t, os.Mkdir(f.slot("alice"), 0o700))
	f.link(t, "bob")
	info, err := f.m.DetectLiveSlotDrift()
	require.NoError(t, err)
	assert.Equal(t, "bob", info.MatchingSlot)
	assert.NotContains(t, info.SlotHashes, "alice")
}
