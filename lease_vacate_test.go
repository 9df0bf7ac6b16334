package credslots

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A killed lessee's seat, recovered and cleared, and then reused by hand
// (a CLI run there logs in): the login put there later is nobody's lease,
// so a later recovery neither files it under the killed lease's sub nor
// hands it to another seat.
func TestARecoveredSeatReusedByHandIsNotTheLeases(t *testing.T) {
	for _, expiry := range []time.Duration{2 * time.Hour, -time.Hour} {
		t.Run(expiry.String(), func(t *testing.T) {
			f := leaseFixture(t)
			seat := seatDir(t)
			l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
			require.NoError(t, err)
			require.NoError(t, l.File().Close()) // the lessee died
			l2, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("alice"))
			require.NoError(t, err)
			require.NoError(t, l2.Release())
			require.NoFileExists(t, filepath.Join(seat, DefaultLiveName), "recovered: the seat is empty")

			cliRefresh(t, seat, fresh.Add(expiry), "rt-someone-else")
			l3, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("erik"))
			require.NoError(t, err)
			defer func() { _ = l3.Release() }()
			assert.Equal(t, "rt-bob-0", refreshTokenOf(mustRead(t, f.slot("bob"))), "bob's slot keeps bob's login")
			assert.Equal(t, "rt-someone-else", refreshTokenOf(mustRead(t, filepath.Join(seat, DefaultLiveName))), "the seat keeps what was put there")

			s4 := seatDir(t)
			l4, err := f.m.Lease(context.Background(), s4, LeaseSub("bob"))
			require.NoError(t, err)
			defer func() { _ = l4.Release() }()
			assert.Equal(t, "rt-bob-0", refreshTokenOf(mustRead(t, filepath.Join(s4, DefaultLiveName))), "bob's own login, not the hand login")
		})
	}
}

// A seat inside a held lease's seat, or holding one, is refused: the
// recovery of a private seat removes its directory, and the CLI of the
// outer one keeps its files there.
func TestANestedSeatIsRefusedWhileTheOtherIsHeld(t *testing.T) {
	f := leaseFixture(t)
	outer := filepath.Join(f.dir, privateDirName, SeatsDirName, "a")
	inner := filepath.Join(outer, "b")
	for _, c := range []struct{ held, asked, what string }{{inner, outer, "it holds"}, {outer, inner, "it is inside"}} {
		l, err := f.m.Lease(context.Background(), c.held, LeaseSub("alice"))
		require.NoError(t, err)
		_, err = f.m.Lease(context.Background(), c.asked, LeaseSub("bob"))
		require.ErrorIs(t, err, ErrLeased)
		assert.Contains(t, err.Error(), c.what+" the seat of alice's lease")
		require.NoError(t, l.Release())
	}
}

// Two private seats in one directory under the seats dir (siblings, or an
// inner one leased after the outer was released): the recovery of the
// ended one leaves the directory while the other lease's seat is in it,
// so that its refreshed login is neither lost nor replaced by the spent
// one at its next lease.
func TestTheRecoveryOfAPrivateSeatLeavesAnotherLeasesSeatInIt(t *testing.T) {
	for _, name := range []string{"siblings", "inner after outer"} {
		t.Run(name, func(t *testing.T) {
			f := leaseFixture(t)
			top := filepath.Join(f.dir, privateDirName, SeatsDirName, "a")
			bobSeat, aliceSeat := filepath.Join(top, "y"), filepath.Join(top, "x")
			if name != "siblings" {
				bobSeat, aliceSeat = top, filepath.Join(top, "b")
			}
			lb, err := f.m.Lease(context.Background(), bobSeat, LeaseSub("bob"))
			require.NoError(t, err)
			la := (*Lease)(nil)
			if name == "siblings" {
				la, err = f.m.Lease(context.Background(), aliceSeat, LeaseSub("alice"))
				require.NoError(t, err)
				require.NoError(t, lb.File().Close()) // bob's lessee died: recovered later
			} else {
				require.NoError(t, lb.File().Close())
				la, err = f.m.Lease(context.Background(), aliceSeat, LeaseSub("alice"))
				require.NoError(t, err)
			}
			cliRefresh(t, aliceSeat, fresh.Add(20*time.Hour), "rt-alice-1")
			le, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("erik"))
			require.NoError(t, err)
			require.NoError(t, le.Release())
			assert.Equal(t, "rt-alice-1", refreshTokenOf(mustRead(t, filepath.Join(aliceSeat, DefaultLiveName))), "alice's held seat keeps her refreshed login")
			require.NoError(t, la.Release())
			s2 := seatDir(t)
			l2, err := f.m.Lease(context.Background(), s2, LeaseSub("alice"))
			require.NoError(t, err)
			defer func() { _ = l2.Release() }()
			assert.Equal(t, "rt-alice-1", refreshTokenOf(mustRead(t, filepath.Join(s2, DefaultLiveName))), "her newest login, not the spent one")
			l3, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("erik"))
			require.NoError(t, err)
			require.NoError(t, l3.Release())
			_, err = os.Stat(top)
			assert.ErrorIs(t, err, os.ErrNotExist, "once no lease's seat is in it, the directory goes")
		})
	}
}
