package etcd_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gptme/credslots/etcd"
)

// A seat login the pool cannot weigh (no readable expiry, an emptied
// access token) that holds a refresh token the pool does not may be the
// only copy of the newest one: a release or a settle keeps it as a sealed
// backup before it clears the seat. One without another refresh token is
// dropped.
func TestASeatLoginThatCannotBeWeighedIsKeptAside(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		kept bool
	}{
		{"a null expiresAt", `{"claudeAiOauth":{"accessToken":"at-x","refreshToken":"` + marker + `-rt-alice-9","expiresAt":null}}`, true},
		{"an emptied access token", `{"claudeAiOauth":{"accessToken":"","refreshToken":"` + marker + `-rt-alice-9","expiresAt":1}}`, true},
		{"an emptied refresh token", `{"claudeAiOauth":{"accessToken":"at-x","refreshToken":"","expiresAt":1}}`, false},
		{"the stored refresh token, emptied access token", `{"claudeAiOauth":{"accessToken":"","refreshToken":"` + marker + `-rt-alice-0","expiresAt":1}}`, false},
	}
	for _, end := range []string{"release", "settle"} {
		for _, c := range cases {
			t.Run(end+", "+c.name, func(t *testing.T) {
				p, cli, _, a := aliceRefreshedInASeat(t)
				ctx, seat := context.Background(), a.Seat()
				require.NoError(t, os.WriteFile(filepath.Join(seat, ".credentials.json"), []byte(c.doc), 0o600))
				if end == "release" {
					require.NoError(t, a.Release())
				} else {
					_, err := cli.Revoke(ctx, clientv3.LeaseID(a.ID()))
					require.NoError(t, err)
					<-a.Done()
					etcd.GoneFromSeat(a)
					_, err = etcd.SettleSeat(ctx, p, seat)
					require.NoError(t, err)
				}
				stored, err := p.Export(ctx, "alice")
				require.NoError(t, err)
				assert.Equal(t, marker+"-rt-alice-0", refreshToken(t, stored), "never written back")
				_, err = os.Stat(filepath.Join(seat, ".credentials.json"))
				assert.ErrorIs(t, err, os.ErrNotExist, "the seat is cleared")
				st, err := p.Status(ctx)
				require.NoError(t, err)
				require.Len(t, st, 1)
				if c.kept {
					assert.Equal(t, 1, st[0].Backups, "kept aside, not lost")
				} else {
					assert.Zero(t, st[0].Backups, "nothing worth keeping")
				}
			})
		}
	}
}
