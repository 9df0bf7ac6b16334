package credslots

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A lease whose lessee died is found ended by the next recovery, which the
// record keeps: after a change made later, .claude.json showing that sub's
// account is evidence again (a /login as alice at home is alice's), where
// before that change it may be the seat's write.
func TestAnEndedLeaseStopsSettingItsAccountAsideAfterTheNextChange(t *testing.T) {
	now := testNow
	f, path := homeFixture(t, WithClock(func() time.Time { return now }))
	learnAccounts(t, f, path)
	step := func() { now = now.Add(time.Minute) }
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	step()
	l, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("alice"))
	require.NoError(t, err)
	require.NoError(t, l.File().Close()) // the lessee died
	step()
	login := func() {
		writeFile(t, path, claudeJSON(aliceAccount)) // a /login as alice at home
		f.refresh(t, claudeDoc(fresh.Add(time.Hour), "rt-alice-new"))
	}
	login()
	_, err = f.m.HealDrift()
	require.ErrorIs(t, err, ErrAmbiguous, "the lease may have lasted past the last change")

	f.link(t, "bob") // the test puts the link back
	_, err = f.m.SwitchTo("alice", "recovers alice's ended lease")
	require.NoError(t, err)
	step()
	_, err = f.m.SwitchTo("bob", "a change after it ended")
	require.NoError(t, err)
	step()
	login()
	_, err = f.m.HealDrift()
	require.ErrorIs(t, err, ErrIdentityDrift, "it is alice's login")
	assert.NotErrorIs(t, err, ErrAmbiguous)
	assert.Contains(t, err.Error(), "credslots heal alice")
}
