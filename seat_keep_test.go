package credslots

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A seat login that cannot be weighed (no readable expiry, an emptied
// access token) but holds a refresh token the slot does not may be the
// only copy of the newest one: a release or a recovery keeps it as a
// backup before it clears the seat. One that holds no other refresh token
// is dropped, as before.
func TestASeatLoginThatCannotBeWeighedIsKeptIfItHoldsAnotherRefreshToken(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		kept bool
	}{
		{"a null expiresAt", `{"claudeAiOauth":{"accessToken":"at-x","refreshToken":"rt-erik-9","expiresAt":null}}`, true},
		{"an expiresAt out of range", `{"claudeAiOauth":{"accessToken":"at-x","refreshToken":"rt-erik-9","expiresAt":1e300}}`, true},
		{"an emptied access token", `{"claudeAiOauth":{"accessToken":"","refreshToken":"rt-erik-9","expiresAt":1}}`, true},
		{"an emptied refresh token", `{"claudeAiOauth":{"accessToken":"at-x","refreshToken":"","expiresAt":1}}`, false},
		{"the slot's own refresh token, emptied access token", `{"claudeAiOauth":{"accessToken":"","refreshToken":"rt-erik-0","expiresAt":1}}`, false},
	}
	for _, end := range []string{"release", "recovery"} {
		for _, c := range cases {
			t.Run(end+", "+c.name, func(t *testing.T) {
				f := leaseFixture(t)
				seat := seatDir(t)
				l, err := f.m.Lease(context.Background(), seat, LeaseSub("erik"))
				require.NoError(t, err)
				writeFile(t, filepath.Join(seat, DefaultLiveName), []byte(c.doc))
				if end == "release" {
					require.NoError(t, l.Release())
				} else {
					require.NoError(t, l.File().Close()) // the lessee died
					l2, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("erik"))
					require.NoError(t, err, "the dead seat is recovered first")
					defer func() { _ = l2.Release() }()
				}
				assert.Equal(t, "rt-erik-0", refreshTokenOf(mustRead(t, f.slot("erik"))), "never written back")
				_, err = os.Lstat(filepath.Join(seat, DefaultLiveName))
				assert.True(t, os.IsNotExist(err), "the seat is cleared")

				backups, err := f.m.Backups()
				require.NoError(t, err)
				var kept []string
				for _, b := range backups {
					if strings.Contains(b.Name, ".credentials.json.erik.seat") {
						kept = append(kept, b.Path)
					}
				}
				if !c.kept {
					assert.Empty(t, kept, "nothing worth keeping")
					return
				}
				require.Len(t, kept, 1, "kept, not lost")
				assert.Equal(t, c.doc, string(mustRead(t, kept[0])), "as it was")
			})
		}
	}
}
