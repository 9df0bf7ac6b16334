package credslots

// Red-team replays of sequences that ended with one refresh token, a
// single-use login, live in two places (two slots, a slot and a seat, two
// seats), or that took two logins of one Codex account for one login.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// codexLogin is a Codex CLI login of account with its own refresh token.
func codexLogin(expiry time.Time, account, refresh string) []byte {
	return []byte(strings.Replace(string(codexDoc(expiry, account)), `"rt-`+account+`"`, `"`+refresh+`"`, 1))
}

// A seat leased to bob into which alice's login was copied (an agent set
// up by copying a credential file) held alice's refresh token; the release
// wrote it back into bob's slot as bob's newer login, so that two slots
// held it, bob's own login pushed out to a backup.
func TestLeaseReleaseKeepsAnotherSlotsLoginOutOfItsSlot(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []Option
		slots   func(t *testing.T, f *fixture)
		copyIn  func(t *testing.T, f *fixture, seat string)
		seatDoc string
	}{
		{"claude", nil, func(t *testing.T, f *fixture) {},
			func(t *testing.T, f *fixture, seat string) {
				alice, err := os.ReadFile(f.slot("alice"))
				require.NoError(t, err)
				writeFile(t, filepath.Join(seat, DefaultLiveName), alice)
			}, DefaultLiveName},
		{"codex, two logins of one account", []Option{WithFormat(CodexCLI)}, func(t *testing.T, f *fixture) {
			for i, sub := range []string{"erik", "bob", "alice"} {
				writeFile(t, f.slot(sub), codexLogin(fresh.Add(time.Duration(i)*time.Hour), "acct", "rt-"+sub+"-0"))
				_, err := f.m.CaptureSlotFingerprint(sub)
				require.NoError(t, err)
			}
		}, func(t *testing.T, f *fixture, seat string) {
			alice, err := os.ReadFile(f.slot("alice"))
			require.NoError(t, err)
			writeFile(t, filepath.Join(seat, "auth.json"), alice)
		}, "auth.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f *fixture
			if tc.opts == nil {
				f = leaseFixture(t)
			} else {
				f = newFixture(t, tc.opts...)
			}
			tc.slots(t, f)
			bob, err := os.ReadFile(f.slot("bob"))
			require.NoError(t, err)
			seat := seatDir(t)
			l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
			require.NoError(t, err)
			tc.copyIn(t, f, seat)

			err = l.Sync()
			require.ErrorIs(t, err, ErrIdentityDrift, "alice's login is not bob's newer one")
			assert.Contains(t, err.Error(), "alice")
			require.NoError(t, l.Release())
			after, err := os.ReadFile(f.slot("bob"))
			require.NoError(t, err)
			assert.Equal(t, bob, after, "bob's slot keeps bob's login")
			assert.NoFileExists(t, filepath.Join(seat, tc.seatDoc), "the copy left the seat")
			st, err := f.m.Status()
			require.NoError(t, err)
			for _, p := range st.Problems {
				assert.NotContains(t, p, "same login", "no slot holds another's login")
				assert.NotContains(t, p, "one login")
			}
		})
	}
}
