package clilock

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A record naming a dead pid proves its holder gone only where Claude Code
// trusts the pid view: /proc/self is this process, and /proc lists at
// least 16 processes. Elsewhere the stale time decides.
func TestAGoneHolderNeedsATrustedPidView(t *testing.T) {
	me, ok := Self()
	require.True(t, ok)
	dead := Owner{PID: 1<<22 - 1, PIDDomain: me.Domain, PIDSpace: me.Space}
	for ProcessExists(dead.PID) {
		dead.PID-- // a pid no process has
	}
	fake := func(self string, pids int) string {
		root := t.TempDir()
		require.NoError(t, os.Symlink(self, filepath.Join(root, "self")))
		for i := 0; i < pids; i++ {
			require.NoError(t, os.Mkdir(filepath.Join(root, strconv.Itoa(100+i)), 0o700))
		}
		require.NoError(t, os.Mkdir(filepath.Join(root, "sys"), 0o700))
		return root
	}
	defer func(saved string) { procRoot = saved }(procRoot)
	for _, tc := range []struct {
		name string
		root string
		want Holder
	}{
		{"the real /proc", "/proc", HolderGone},
		{"a /proc of its own with 16 processes", fake(strconv.Itoa(PID()), 16), HolderGone},
		{"a /proc listing 15 processes", fake(strconv.Itoa(PID()), 15), HolderUnknown},
		{"a /proc whose self is another process", fake("1", 40), HolderUnknown},
		{"no /proc/self", t.TempDir(), HolderUnknown},
	} {
		procRoot = tc.root
		assert.Equal(t, tc.want, dead.Judge(), tc.name)
	}
}
