//go:build unix

package credslots

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// lchtimes sets a symlink's own times.
func lchtimes(t testing.TB, path string, at time.Time) {
	t.Helper()
	ts := unix.NsecToTimespec(at.UnixNano())
	require.NoError(t, unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
}

// setUmask0277 gives a test child process the umask of a locked-down agent
// user.
func setUmask0277() { unix.Umask(0o277) }
