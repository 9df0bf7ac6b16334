//go:build unix

package credslots

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSwitchReplacesALiveSymlinkThatHoldsNoData(t *testing.T) {
	cases := map[string]func(t *testing.T, target string){
		"to a directory": func(t *testing.T, target string) {
			require.NoError(t, os.Mkdir(target, 0o700))
			writeFile(t, filepath.Join(target, "keep"), []byte("keep"))
		},
		"to a FIFO": func(t *testing.T, target string) {
			require.NoError(t, syscall.Mkfifo(target, 0o600))
		},
		"to a file larger than the reader reads": func(t *testing.T, target string) {
			writeFile(t, target, make([]byte, disk.MaxFileSize+1))
		},
	}
	for name, make := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			target := filepath.Join(t.TempDir(), "elsewhere")
			make(t, target)
			require.NoError(t, os.Symlink(target, f.m.LivePath()))
			res, err := f.m.SwitchTo("bob", "r") // not forced: a symlink holds no data
			require.NoError(t, err)
			assert.True(t, res.OK)
			assert.Equal(t, ".credentials.json.bob", f.readlink(t))
			_, err = os.Lstat(target)
			assert.NoError(t, err, "what the old symlink pointed at is untouched")
		})
	}
}

func TestHealReplacesASlotThatIsASymlinkToADirectory(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	_, err := f.m.SwitchTo("bob", "r")
	require.NoError(t, err)
	elsewhere := t.TempDir()
	writeFile(t, filepath.Join(elsewhere, "keep"), []byte("keep"))
	require.NoError(t, os.Remove(f.slot("bob")))
	require.NoError(t, os.Symlink(elsewhere, f.slot("bob")))
	refreshed := claudeDoc(fresh.Add(time.Hour), "rt-bob-2")
	f.refresh(t, refreshed)

	res, err := f.m.HealDriftTo("bob")
	require.NoError(t, err)
	assert.True(t, res.OK)
	fi, err := os.Lstat(f.slot("bob"))
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular(), "the slot is a file again")
	data, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, refreshed, data)
	assert.FileExists(t, filepath.Join(elsewhere, "keep"), "nothing behind the old symlink changed")
}

func TestSweepNeverRemovesBehindASymlinkedDirectory(t *testing.T) {
	outside := t.TempDir()
	f := newFixture(t, withSweepAge(time.Minute), WithSlotTemplate("slots/{sub}.json"))
	require.NoError(t, os.Symlink(outside, filepath.Join(f.dir, "slots")))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	old := time.Now().Add(-2 * time.Minute)
	plant := func(path string) string {
		writeFile(t, path, []byte("not the package's"))
		require.NoError(t, os.Chtimes(path, old, old))
		return path
	}
	notes := plant(filepath.Join(outside, ".notes"+tmpMarker+"keep"))
	ourName := plant(filepath.Join(outside, ".bob.json"+tmpMarker+"1")) // our pattern, but outside D
	workDir := filepath.Join(outside, "old"+tmpMarker+"d")
	plant(filepath.Join(workDir, "file"))
	require.NoError(t, os.Chtimes(workDir, old, old))
	inD := plant(filepath.Join(f.dir, ".notes"+tmpMarker+"keep")) // not a name of ours, in D
	dirInD := filepath.Join(f.dir, "old"+tmpMarker+"d")
	plant(filepath.Join(dirInD, "file"))
	require.NoError(t, os.Chtimes(dirInD, old, old))

	_, err := f.m.SwitchTo("bob", "r")
	require.NoError(t, err)
	for _, p := range []string{notes, ourName, filepath.Join(workDir, "file"), inD, filepath.Join(dirInD, "file")} {
		assert.FileExists(t, p, "the sweep removed %s, which it cannot prove it wrote", p)
	}
}
