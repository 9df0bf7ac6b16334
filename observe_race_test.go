package credslots

import (
	"context"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gptme/credslots/internal/disk"
)

// Two processes observe the same sub at once: A a 429 with Retry-After: 60,
// B a weekly rejection. B's week-long rest lands just before A takes the
// package's lock: A's rest is weighed against it under the lock, and the
// week stands.
func TestTwoObservesAtOnceNeverShortenARest(t *testing.T) {
	dir := t.TempDir()
	writeSlot(t, filepath.Join(dir, "bob.json"), fresh, "rt-bob")
	week := testNow.Add(7 * 24 * time.Hour)
	other, err := New(WithCredsDir(dir), WithSubscriptions("bob", "alice"), WithClock(fixedClock))
	require.NoError(t, err)

	// B's Observe runs once, as A is about to take the package's lock.
	var once sync.Once
	ffs := &faultFS{inner: disk.OS{}, failAt: -1}
	ffs.before = func(op, name string) {
		if op == "lock" || op == "lockopen" {
			once.Do(func() {
				obs, err := other.Observe("bob", 429, canonical(
					"anthropic-ratelimit-unified-status", "rejected",
					"anthropic-ratelimit-unified-reset", epoch(week)))
				require.NoError(t, err)
				require.Equal(t, OutcomeRested, obs.Outcome)
			})
		}
	}
	m, err := New(WithCredsDir(dir), WithSubscriptions("bob", "alice"), WithClock(fixedClock), withFS(ffs))
	require.NoError(t, err)
	_, err = m.Observe("bob", http.StatusTooManyRequests, canonical("Retry-After", "60"))
	require.NoError(t, err)

	st, err := other.readState()
	require.NoError(t, err)
	require.NotNil(t, st["bob"].RestUntil)
	require.True(t, st["bob"].RestUntil.Equal(week), "a standing rest is never shortened: bob rests until %s", st["bob"].RestUntil)
}

// A 401 observed while bob is leased marks the seat's login. The seat's CLI
// then refreshes: as a heal of the live file does, the lease's write-back
// carries the mark onto the same account's refreshed login, and bob stays
// invalid until a new login.
func TestALeaseWriteBackCarriesTheInvalidMark(t *testing.T) {
	f := leaseFixture(t)
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	obs, err := f.m.Observe("bob", http.StatusUnauthorized, http.Header{})
	require.NoError(t, err)
	require.Equal(t, OutcomeInvalidated, obs.Outcome, obs.Reason)

	// The seat's CLI refreshes the same account's login.
	writeFile(t, f.m.seatFile(seat), claudeDoc(fresh.Add(5*time.Hour), "rt-bob-1"))
	require.NoError(t, l.Release())

	for _, c := range f.m.Candidates() {
		if c.Sub == "bob" {
			require.True(t, c.Invalid, "the server's rejection stands: %+v", c)
		}
	}
}

// SwitchNext ranks the subs without the package's lock: a rest another
// process writes between the ranking and the switch is seen under the
// lock, and the next candidate taken.
func TestSwitchNextSeesARestWrittenAfterTheRanking(t *testing.T) {
	dir := t.TempDir()
	writeSlot(t, filepath.Join(dir, ".credentials.json.bob"), fresh, "rt-bob")
	writeSlot(t, filepath.Join(dir, ".credentials.json.alice"), fresh.Add(time.Hour), "rt-alice")
	writeSlot(t, filepath.Join(dir, ".credentials.json.erik"), fresh, "rt-erik")
	subs := WithSubscriptions("bob", "alice", "erik")
	other, err := New(WithCredsDir(dir), subs, WithClock(fixedClock))
	require.NoError(t, err)
	_, err = other.SwitchTo("bob", "start")
	require.NoError(t, err)
	week := testNow.Add(7 * 24 * time.Hour)
	var once sync.Once
	ffs := &faultFS{inner: disk.OS{}, failAt: -1}
	ffs.before = func(op, name string) {
		if (op == "lock" || op == "lockopen") && filepath.Base(name) == "lock" {
			once.Do(func() {
				obs, err := other.Observe("alice", 429, hdr("anthropic-ratelimit-unified-status", "rejected",
					"anthropic-ratelimit-unified-reset", epoch(week)))
				require.NoError(t, err)
				require.Equal(t, OutcomeRested, obs.Outcome)
			})
		}
	}
	m, err := New(WithCredsDir(dir), subs, WithClock(fixedClock), withFS(ffs))
	require.NoError(t, err)
	first := ""
	for _, c := range m.Candidates() {
		if first == "" && c.Usable && !c.Active {
			first = c.Sub
		}
	}
	require.Equal(t, "alice", first, "alice ranks first of the others: latest expiry")

	res, err := m.SwitchNext("bob spent")
	require.NoError(t, err)
	assert.Equal(t, "erik", res.Sub, "alice was rested before the switch took the lock")
	sub, _ := m.ActiveSubscription()
	assert.Equal(t, "erik", sub)

	// bob, the one candidate left, rested by the time of the switch: none
	// is left.
	once = sync.Once{}
	ffs.before = func(op, name string) {
		if (op == "lock" || op == "lockopen") && filepath.Base(name) == "lock" {
			once.Do(func() {
				require.NoError(t, other.Rest("bob", week, "spent"))
			})
		}
	}
	_, err = m.SwitchNext("erik spent")
	assert.ErrorIs(t, err, ErrNoCandidate)
}
