//go:build unix

package disk

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestAppendRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.jsonl")
	_, err := AppendRecord(path, []byte("a\n"), false, false)
	require.ErrorIs(t, err, fs.ErrNotExist, "created only when asked")
	old := unix.Umask(0o277) // takes the owner's write bit: fixed after the open
	size, err := AppendRecord(path, []byte("a\n"), true, true)
	unix.Umask(old)
	require.NoError(t, err)
	assert.Equal(t, int64(0), size, "the size before the write")
	size, err = AppendRecord(path, []byte("bb\n"), false, false)
	require.NoError(t, err)
	assert.Equal(t, int64(2), size)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, unix.Mkfifo(fifo, 0o600))
	_, err = AppendRecord(fifo, []byte("x\n"), true, true)
	assert.True(t, errors.Is(err, ErrNotRegular), "a FIFO is refused, without blocking: %v", err)
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink("nowhere", link))
	_, err = AppendRecord(link, []byte("x\n"), false, true)
	assert.True(t, errors.Is(err, ErrNotRegular), "a dangling symlink is not followed into a new file: %v", err)
	_, err = os.Lstat(filepath.Join(dir, "nowhere"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
}
