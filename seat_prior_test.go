package credslots

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Lease whose hand-out into a seat fails (after its record was written)
// leaves a record naming the seat, which still holds the login it held
// before (a login of no configured sub). The next recovery of that seat
// leaves it there: it was never bob's, and bob's slot keeps bob's login.
func TestASeatWhoseHandOutFailedKeepsItsEarlierLoginOutOfTheSlot(t *testing.T) {
	ofs := &onceFailFS{FS: disk.OS{}, op: "rename"}
	f := leaseFixture(t, withFS(ofs))
	seat := seatDir(t)
	seatFile := filepath.Join(seat, DefaultLiveName)
	ofs.path = seatFile
	// The seat already holds a login of the user's own (not any sub's).
	writeFile(t, seatFile, claudeDoc(testNow.Add(-10*time.Hour), "rt-manual"))

	ofs.armed.Store(true)
	_, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.ErrorIs(t, err, errInjected, "the hand-out failed")
	require.Equal(t, "rt-bob-0", refreshTokenOf(mustRead(t, f.slot("bob"))))

	// Any later lease recovers the "ended" lease's seat first.
	l, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("alice"))
	require.NoError(t, err)
	defer func() { _ = l.Release() }()
	assert.Equal(t, "rt-bob-0", refreshTokenOf(mustRead(t, f.slot("bob"))),
		"bob's slot must keep bob's login: the seat's login was never bob's")
	assert.Equal(t, "rt-manual", refreshTokenOf(mustRead(t, seatFile)), "the seat keeps its own login")
	st, err := f.m.Status()
	require.NoError(t, err)
	for _, p := range st.Problems {
		assert.NotContains(t, p, "left its login there")
	}
}

// A lease released while no other process held its lock vacated its seat:
// a login put there later (the directory reused by hand) is not the
// lease's. The next recovery, by a lease or a switch, files nothing of it
// into the sub's slot and leaves it in the seat.
func TestALoginPutInAVacatedSeatLaterIsNotTheLeases(t *testing.T) {
	for _, by := range []string{"lease", "switch"} {
		t.Run(by, func(t *testing.T) {
			f := leaseFixture(t)
			seat := seatDir(t)
			l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
			require.NoError(t, err)
			require.NoError(t, l.Release())
			cliRefresh(t, seat, testNow.Add(-48*time.Hour), "rt-someone-else")
			if by == "lease" {
				l2, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("alice"))
				require.NoError(t, err)
				defer func() { _ = l2.Release() }()
			} else {
				_, err := f.m.SwitchTo("bob", "operator")
				require.NoError(t, err)
			}
			assert.Equal(t, "rt-bob-0", refreshTokenOf(mustRead(t, f.slot("bob"))), "bob's slot keeps bob's login")
			assert.Equal(t, "rt-someone-else", refreshTokenOf(mustRead(t, filepath.Join(seat, DefaultLiveName))), "the seat keeps what was put there")
		})
	}
}

// A login a seat held before the lease that cannot be weighed (a null
// expiresAt, an emptied access token) is kept as a backup before the
// hand-out overwrites it, when it holds a refresh token the slot does not:
// it may be the only copy of someone's newest one.
func TestAnUnweighedLoginASeatHeldBeforeTheLeaseIsKept(t *testing.T) {
	for name, doc := range map[string]string{
		"a null expiresAt":        `{"claudeAiOauth":{"accessToken":"at-x","refreshToken":"rt-manual","expiresAt":null}}`,
		"an emptied access token": `{"claudeAiOauth":{"accessToken":"","refreshToken":"rt-manual","expiresAt":1}}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := leaseFixture(t)
			seat := seatDir(t)
			writeFile(t, filepath.Join(seat, DefaultLiveName), []byte(doc))
			l, err := f.m.Lease(context.Background(), seat, LeaseSub("alice"))
			require.NoError(t, err)
			defer func() { _ = l.Release() }()
			backups, err := f.m.Backups()
			require.NoError(t, err)
			kept := false
			for _, b := range backups {
				kept = kept || strings.Contains(b.Name, ".credentials.json.alice.seat")
			}
			assert.True(t, kept, "the login the seat held before is kept as a backup")
		})
	}
}

// A seat that held the slot's own login before the hand-out (a stale copy)
// is the lease's once handed out: its recovery clears it as any other, so
// that no copy of the login stays in a dead seat.
func TestASeatThatHeldTheSlotsLoginBeforeIsClearedByItsRecovery(t *testing.T) {
	f := leaseFixture(t)
	seat := seatDir(t)
	seatFile := filepath.Join(seat, DefaultLiveName)
	writeFile(t, seatFile, mustRead(t, f.slot("bob")))
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	require.NoError(t, l.File().Close()) // the lessee died
	l2, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("alice"))
	require.NoError(t, err)
	defer func() { _ = l2.Release() }()
	_, err = os.Stat(seatFile)
	assert.ErrorIs(t, err, os.ErrNotExist, "the dead seat no longer holds bob's login")
}
