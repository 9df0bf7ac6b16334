package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFileReplacesWith0600(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "log.jsonl")
	require.NoError(t, os.WriteFile(dest, []byte("old"), 0o644))
	require.NoError(t, WriteFile(osFS{}, dest, []byte("new"), nil))
	data, err := os.ReadFile(dest)
	require.NoError(t, err)
	assert.Equal(t, "new", string(data))
	fi, err := os.Stat(dest)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, 1, "no temporary left")
}

func TestWriteFileReplacesASymlinkWithoutFollowingIt(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("keep"), 0o600))
	dest := filepath.Join(dir, "dest")
	require.NoError(t, os.Symlink("victim", dest))
	require.NoError(t, WriteFile(osFS{}, dest, []byte("new"), nil))
	data, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "keep", string(data))
	fi, err := os.Lstat(dest)
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular())
}

// osFS is the real file system, for these tests.
type osFS struct{}

func (osFS) CreateTemp(dir, pattern string) (File, error) { return os.CreateTemp(dir, pattern) }
func (osFS) Rename(from, to string) error                 { return os.Rename(from, to) }
func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) SyncDir(dir string) error                     { return SyncDir(dir) }

// failingRename fails every rename.
type failingRename struct{ osFS }

func (failingRename) Rename(string, string) error { return errors.New("injected") }

func TestWriteFileCleansUpOnFailure(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "dest")
	require.NoError(t, os.WriteFile(dest, []byte("old"), 0o600))
	err := WriteFile(failingRename{}, dest, []byte("new"), nil)
	require.Error(t, err)
	data, rerr := os.ReadFile(dest)
	require.NoError(t, rerr)
	assert.Equal(t, "old", string(data))
	ents, rerr := os.ReadDir(dir)
	require.NoError(t, rerr)
	assert.Len(t, ents, 1, "the temporary file was removed")

	assert.Error(t, WriteFile(osFS{}, filepath.Join(dir, "absent-dir", "f"), []byte("x"), nil))
}
