package credslots

// Two operator commands racing, each in its own Manager (as two
// processes): the package lock serializes them and each re-checks after
// it got the lock, so no login is lost or filed under another sub.

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allFilesText is every regular file under dir, path and content.
func allFilesText(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			d, _ := os.ReadFile(p)
			b.WriteString(p + ": " + string(d) + "\n")
		}
		return nil
	})
	return b.String()
}

// A new login is live; one operator forces a switch to alice while
// another files the login under erik. Either order keeps every refresh
// token somewhere, and erik, if written, holds the new login.
func TestOperatorAnAdoptRacingAForcedSwitch(t *testing.T) {
	for i := 0; i < 6; i++ {
		f, claudeJSONPath := accountsFixture(t)
		writeFile(t, claudeJSONPath, claudeJSON(daveAccount))
		login := claudeDoc(fresh.Add(time.Hour), "rt-dave")
		f.refreshAt(t, login, later())
		m2, err := New(WithCredsDir(f.dir), WithSubscriptions("bob", "alice", "erik"), WithClock(fixedClock))
		require.NoError(t, err)
		var wg sync.WaitGroup
		var e1, e2 error
		wg.Add(2)
		go func() { defer wg.Done(); _, e1 = f.m.SwitchTo("alice", "r", Force()) }()
		go func() { defer wg.Done(); _, e2 = m2.Adopt("erik") }()
		wg.Wait()
		require.NoError(t, e1)
		if e2 != nil {
			require.ErrorIs(t, e2, ErrNoDrift, "the switch came first: nothing new is live")
		}
		all := allFilesText(t, f.dir)
		for _, rt := range []string{"rt-dave", "rt-alice", "rt-bob"} {
			assert.Contains(t, all, rt)
		}
		if b, err := os.ReadFile(f.slot("erik")); err == nil {
			assert.Equal(t, string(login), string(b), "erik holds dave")
		}
	}
}
