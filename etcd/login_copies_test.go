package etcd_test

// One refresh token, a single-use login, in two keys of the pool would be
// handed to two seats (two hosts): the first refresh through either ends
// the other.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gptme/credslots"
	"github.com/gptme/credslots/etcd"
)

// Import compared Codex identities (the account) alone: the same refresh
// token under another account_id went in as a second sub's login. It now
// refuses one refresh token in two keys, and, a sub being one account, a
// second login of an account another key holds.
func TestImportRefusesOneRefreshTokenInTwoKeys(t *testing.T) {
	c := sharedCluster(t)
	p := newPool(t, newClient(t, c.endpoints()...), testPrefix(t), writeKey(t), etcd.WithFormat(credslots.CodexCLI))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "work", codexLogin("acct-1", later, "SECRET-a")))
	err := p.Import(ctx, "spare", codexLogin("acct-2", later, "SECRET-a"))
	require.ErrorIs(t, err, etcd.ErrDuplicate, "work's refresh token")
	assert.Contains(t, err.Error(), "sub work holds this login already")
	assert.NotContains(t, err.Error(), marker)
	err = p.Import(ctx, "spare", codexLogin("acct-1", later, "SECRET-b"))
	require.ErrorIs(t, err, etcd.ErrDuplicate, "work's account")
	assert.Contains(t, err.Error(), "sub work holds a login of this account already")
	require.NoError(t, p.Import(ctx, "spare", codexLogin("acct-2", later, "SECRET-b")))
}

// A seat leased to bob into which alice's login was copied was written
// back into bob's key as bob's newer login: two keys then held alice's
// refresh token, for two hosts to lease.
func TestWriteBackRefusesALoginAnotherSubHolds(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c.endpoints()...)
	p := newPool(t, cli, testPrefix(t), writeKey(t))
	ctx := context.Background()
	alice := claudeLogin("alice", 0, later.Add(1e9))
	require.NoError(t, p.Import(ctx, "alice", alice))
	require.NoError(t, p.Import(ctx, "bob", claudeLogin("bob", 0, later)))
	seat := filepath.Join(t.TempDir(), "seat")
	l, err := p.Lease(ctx, seat, etcd.LeaseSub("bob"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(seat, ".credentials.json"), alice, 0o600))

	err = l.Sync()
	require.ErrorIs(t, err, etcd.ErrDuplicate)
	assert.Contains(t, err.Error(), "alice")
	assert.NotContains(t, err.Error(), marker)
	err = l.Release()
	require.ErrorIs(t, err, etcd.ErrDuplicate, "the release says what it kept aside")
	stored, err := p.Export(ctx, "bob")
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-bob-0", refreshToken(t, stored), "bob's key keeps bob's login")
	data, err := os.ReadFile(filepath.Join(seat, ".credentials.json"))
	if err == nil {
		assert.NotContains(t, string(data), "claudeAiOauth", "the copy left the seat")
	}
	assertNoTokenStored(t, cli)
}

// Two seats holding one login (a file copied from one into the other, on two
// hosts) wrote it back at once: each checked that no other sub held it
// before the other's write landed, and both keys took it. The write is now
// fenced by the logins its check read: the second to commit checks again
// and is refused.
func TestTwoSeatsWritingBackOneLoginAtOnceLeaveItInOneKey(t *testing.T) {
	p, a, b := oneLoginInTwoSeats(t)
	var raced bool
	var bErr error
	etcd.OnPoolPoint(t, func(point string) error {
		if point == "checked" && !raced {
			raced = true
			bErr = b.Sync() // b's whole write-back between a's check and a's transaction
		}
		return nil
	})
	aErr := a.Sync()
	require.True(t, raced)
	require.NoError(t, bErr, "b wrote first")
	require.ErrorIs(t, aErr, etcd.ErrDuplicate, "a checks again and finds the login b holds")
	require.NoError(t, a.Err(), "a's lease is not lost for it")

	sa := storedLogin(t, p, "alice", a)
	sb := storedLogin(t, p, "bob", b)
	assert.NotEqual(t, refreshToken(t, sa), refreshToken(t, sb), "one refresh token in two keys")
}

// Two imports of one login under two subs at once: each checked before the
// other's landed. The second to commit now checks again and is refused.
func TestTwoImportsOfOneLoginAtOnceLeaveItInOneKey(t *testing.T) {
	c := sharedCluster(t)
	p := newPool(t, newClient(t, c.endpoints()...), testPrefix(t), writeKey(t))
	ctx := context.Background()
	doc := claudeLogin("carol", 0, later)
	var raced bool
	var daveErr error
	etcd.OnPoolPoint(t, func(point string) error {
		if point == "checked" && !raced {
			raced = true
			daveErr = p.Import(ctx, "dave", doc)
		}
		return nil
	})
	carolErr := p.Import(ctx, "carol", doc)
	require.True(t, raced)
	require.NoError(t, daveErr)
	require.ErrorIs(t, carolErr, etcd.ErrDuplicate)
	st, err := p.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st, 1, "one key holds the login")
	assert.Equal(t, "dave", st[0].Sub)
}

// storedLogin releases l and returns sub's stored login.
func storedLogin(t *testing.T, p *etcd.Pool, sub string, l *etcd.Lease) []byte {
	t.Helper()
	_ = l.Release()
	doc, err := p.Export(context.Background(), sub)
	require.NoError(t, err)
	return doc
}

// Another sub's own login written between a write-back's check and its
// transaction fails the fence too; the write-back checks again and goes
// in, its lease kept, and so does an import.
func TestAnotherSubsWriteBetweenCheckAndWriteIsCheckedAgain(t *testing.T) {
	c := sharedCluster(t)
	p := newPool(t, newClient(t, c.endpoints()...), testPrefix(t), writeKey(t))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	require.NoError(t, p.Import(ctx, "bob", claudeLogin("bob", 0, later)))
	seatA, seatB := t.TempDir(), t.TempDir()
	a, err := p.Lease(ctx, seatA, etcd.LeaseSub("alice"))
	require.NoError(t, err)
	b, err := p.Lease(ctx, seatB, etcd.LeaseSub("bob"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(seatA, ".credentials.json"), claudeLogin("alice", 1, later.Add(time.Hour)), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(seatB, ".credentials.json"), claudeLogin("bob", 1, later.Add(time.Hour)), 0o600))
	checks := 0
	etcd.OnPoolPoint(t, func(point string) error {
		if point == "checked" {
			if checks++; checks == 1 {
				require.NoError(t, b.Sync())
			}
		}
		return nil
	})
	require.NoError(t, a.Sync())
	assert.Equal(t, 3, checks, "a checked twice, b once")
	require.NoError(t, a.Err())

	checks = 0
	require.NoError(t, p.Import(ctx, "carol", claudeLogin("carol", 0, later)), "bob's write is not carol's")
	assert.Equal(t, 1, checks)
	checks = 0
	etcd.OnPoolPoint(t, func(point string) error {
		if point == "checked" {
			if checks++; checks == 1 {
				require.NoError(t, p.Import(ctx, "erin", claudeLogin("erin", 0, later)))
			}
		}
		return nil
	})
	require.NoError(t, p.Import(ctx, "dave", claudeLogin("dave", 0, later)))
	assert.Equal(t, 3, checks, "dave checked twice, erin once")

	assert.Equal(t, marker+"-rt-alice-1", refreshToken(t, storedLogin(t, p, "alice", a)))
	assert.Equal(t, marker+"-rt-bob-1", refreshToken(t, storedLogin(t, p, "bob", b)))
}

// A write-back or an import that finds another sub's login written between
// its check and its transaction every time it checks gives up saying so:
// it writes nothing, its lease is not lost, and a settle leaves the login
// in its seat, pending.
func TestLoginsThatKeepChangingLeaveTheWriteForLater(t *testing.T) {
	p, _, _, a := aliceRefreshedInASeat(t)
	ctx, seat := context.Background(), a.Seat()
	busy, n := false, 0
	etcd.OnPoolPoint(t, func(point string) error {
		if point == "checked" && !busy {
			busy, n = true, n+1
			defer func() { busy = false }()
			return p.Import(ctx, fmt.Sprintf("other%d", n), claudeLogin(fmt.Sprintf("other%d", n), 0, later))
		}
		return nil
	})
	err := a.Sync()
	require.Error(t, err)
	assert.NotErrorIs(t, err, etcd.ErrFenced)
	assert.Contains(t, err.Error(), "kept changing")
	require.NoError(t, a.Err(), "the lease is not lost")

	err = p.Import(ctx, "carol", claudeLogin("carol", 0, later))
	require.Error(t, err)
	assert.NotErrorIs(t, err, etcd.ErrLeased)
	assert.Contains(t, err.Error(), "kept changing")

	_, err = etcd.SettleSeat(ctx, p, seat)
	require.ErrorIs(t, err, etcd.ErrPending)
	data, err := os.ReadFile(filepath.Join(seat, ".credentials.json"))
	require.NoError(t, err, "the seat keeps its login")
	assert.Equal(t, marker+"-rt-alice-1", refreshToken(t, data))

	etcd.OnPoolPoint(t, func(string) error { return nil })
	require.NoError(t, a.Sync())
	require.NoError(t, a.Release())
	stored, err := p.Export(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-1", refreshToken(t, stored))
}

// Two settles of seats holding one login (its lessees gone) at once: the
// settle's write is fenced by the logins its check read, as a write-back's
// is, so one key takes the login and the other seat's copy is kept aside;
// and that fenced settle ends its dead lease at once.
func TestTwoSettlesOfOneLoginLeaveItInOneKey(t *testing.T) {
	p, a, b := oneLoginInTwoSeats(t)
	ctx := context.Background()

	var bSettled *etcd.Settled
	var bErr error
	raced := false
	etcd.OnPoolPoint(t, func(point string) error {
		if point == "checked" && !raced {
			raced = true
			bSettled, bErr = etcd.SettleSeat(ctx, p, b.Seat())
		}
		return nil
	})
	aSettled, err := etcd.SettleSeat(ctx, p, a.Seat())
	require.NoError(t, err)
	require.True(t, raced)
	require.NoError(t, bErr)
	assert.Equal(t, "written back", bSettled.Outcome, "b settled first")
	assert.Equal(t, "backup", aSettled.Outcome, "a checks again and finds the login b's key holds")

	l, err := p.Lease(ctx, t.TempDir(), etcd.LeaseSub("alice"))
	require.NoError(t, err, "the fenced settle ended a's dead lease")
	require.NoError(t, l.Release())
	require.NoError(t, a.Release())
	require.NoError(t, b.Release())
	sa, err := p.Export(ctx, "alice")
	require.NoError(t, err)
	sb, err := p.Export(ctx, "bob")
	require.NoError(t, err)
	assert.NotEqual(t, refreshToken(t, sa), refreshToken(t, sb), "one refresh token in two keys")
}

// oneLoginInTwoSeats leases alice and bob, each into a seat of its own, and
// puts alice's refreshed login (rt-alice-1) into both seats, as a file
// copied from one into the other.
func oneLoginInTwoSeats(t *testing.T) (*etcd.Pool, *etcd.Lease, *etcd.Lease) {
	t.Helper()
	c := sharedCluster(t)
	p := newPool(t, newClient(t, c.endpoints()...), testPrefix(t), writeKey(t))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	require.NoError(t, p.Import(ctx, "bob", claudeLogin("bob", 0, later)))
	a, err := p.Lease(ctx, t.TempDir(), etcd.LeaseSub("alice"))
	require.NoError(t, err)
	b, err := p.Lease(ctx, t.TempDir(), etcd.LeaseSub("bob"))
	require.NoError(t, err)
	refreshed := claudeLogin("alice", 1, later.Add(time.Hour))
	for _, l := range []*etcd.Lease{a, b} {
		require.NoError(t, os.WriteFile(filepath.Join(l.Seat(), ".credentials.json"), refreshed, 0o600))
	}
	return p, a, b
}
