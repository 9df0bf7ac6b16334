package disk

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// withStatx plays a kernel or sandbox whose statx fails with errno for
// every name, and restores the real one after the test.
func withStatx(t *testing.T, errno unix.Errno) {
	t.Helper()
	statxHook = func(int, string, int, int, *unix.Statx_t) error { return errno }
	t.Cleanup(func() { statxHook = nil; noStatx.Store(false) })
}

func TestStatLockWithoutStatxFallsBackToLstat(t *testing.T) {
	for _, errno := range []unix.Errno{unix.ENOSYS, unix.EPERM} {
		t.Run(errno.Error(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "l.lock")
			require.NoError(t, os.Mkdir(dir, 0o700))
			want, err := StatLock(dir)
			require.NoError(t, err)
			withStatx(t, errno)
			got, err := StatLock(dir)
			require.NoError(t, err, "a lock is still taken without statx")
			assert.True(t, got.IsDir())
			assert.Equal(t, want.Ino, got.Ino)
			assert.True(t, want.Mtime.Equal(got.Mtime))
			assert.False(t, got.Birth, "no birth time without statx")
			assert.True(t, noStatx.Load(), "remembered: no second failing call")
		})
	}
}

func TestStatLockKeepsAnEPERMAboutTheName(t *testing.T) {
	// statx refuses this name only: the root still stats, so the refusal
	// is the name's and is reported.
	statxHook = func(dirfd int, path string, flags, mask int, st *unix.Statx_t) error {
		if path == "/" {
			return unix.Statx(dirfd, path, flags, mask, st)
		}
		return unix.EPERM
	}
	t.Cleanup(func() { statxHook = nil; noStatx.Store(false) })
	_, err := StatLock(filepath.Join(t.TempDir(), "x"))
	require.ErrorIs(t, err, unix.EPERM)
	assert.False(t, noStatx.Load())
}
