package etcd_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gptme/credslots"
	"github.com/gptme/credslots/etcd"
)

// refreshOnceAt makes the seat's CLI refresh its login to rt-alice-<n>,
// under its lock, the first time a write-back or settle reaches point.
func refreshOnceAt(t *testing.T, point, seat string, n int) {
	t.Helper()
	done := false
	etcd.OnPoolPoint(t, func(at string) error {
		if at != point || done {
			return nil
		}
		done = true
		release, err := credslots.LockCLI(credslots.ClaudeCode, seat, 5*time.Second)
		if err != nil {
			return err
		}
		defer release()
		return credslots.WriteCredentialFile(filepath.Join(seat, ".credentials.json"), claudeLogin("alice", n, later.Add(time.Duration(n)*time.Hour)))
	})
}

// The CLI refreshes right after Release's final read of the seat, before
// the seat is cleared: that login, the only copy of the newest refresh
// token, is written back before the seat is cleared, never cleared unread.
func TestAReleaseWritesBackALoginWrittenAfterItsLastRead(t *testing.T) {
	p, _, _, a := aliceRefreshedInASeat(t) // the seat holds rt-alice-1
	refreshOnceAt(t, "committed", a.Seat(), 2)
	require.NoError(t, a.Release())
	stored, err := p.Export(context.Background(), "alice")
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-2", refreshToken(t, stored), "the pool holds the newest login")
	_, err = os.Stat(filepath.Join(a.Seat(), ".credentials.json"))
	assert.ErrorIs(t, err, os.ErrNotExist, "and the seat holds none")
}

// The same refresh while the seat of an ended lease is settled: the seat
// keeps the newer login, and the next lease of the seat writes it back.
func TestASettleKeepsALoginWrittenAfterItsRead(t *testing.T) {
	p, cli, _, a := aliceRefreshedInASeat(t) // the seat holds rt-alice-1
	ctx, seat := context.Background(), a.Seat()
	_, err := cli.Revoke(ctx, clientv3.LeaseID(a.ID()))
	require.NoError(t, err)
	<-a.Done()
	etcd.GoneFromSeat(a) // its lessee is gone
	refreshOnceAt(t, "checked", seat, 2)
	_, err = p.Lease(ctx, seat, etcd.LeaseSub("alice"))
	require.ErrorIs(t, err, etcd.ErrPending)
	data, err := os.ReadFile(filepath.Join(seat, ".credentials.json"))
	require.NoError(t, err, "the seat keeps the login written during the settle")
	assert.Equal(t, marker+"-rt-alice-2", refreshToken(t, data))

	l, err := p.Lease(ctx, seat, etcd.LeaseSub("alice"))
	require.NoError(t, err)
	data, err = os.ReadFile(filepath.Join(seat, ".credentials.json"))
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-2", refreshToken(t, data), "the next lease wrote it back and got it")
	require.NoError(t, l.Release())
	require.NoError(t, a.Release())
	stored, err := p.Export(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-2", refreshToken(t, stored))
}

// A command that refreshed its login in run's private seat and died
// holding Claude Code's refresh lock (as a CLI killed mid-refresh leaves
// it): Release cannot read the seat within its lock wait, so the private
// seat and the login in it stay, named, for a later run with --seat.
func TestAPrivateSeatReleaseCouldNotReadIsKept(t *testing.T) {
	c := sharedCluster(t)
	globals := []string{"--endpoints", c.endpointList(), "--key-file", writeKey(t), "--prefix", testPrefix(t)}
	importAll(t, globals, "alice")
	next := filepath.Join(t.TempDir(), "next.json")
	require.NoError(t, os.WriteFile(next, claudeLogin("alice", 1, later.Add(time.Hour)), 0o600))
	script := `mkdir "$CREDSLOTS_SEAT/.oauth_refresh.lock" && cp "$1" "$CREDSLOTS_SEAT/.credentials.json" && echo "$CREDSLOTS_SEAT"`
	out, stderr, code := runCLI(t, append(globals, "run", "--sub", "alice", "--", "sh", "-c", script, "sh", next)...)
	seat := strings.TrimSpace(out)
	require.NotEmpty(t, seat, stderr)
	t.Cleanup(func() { _ = os.RemoveAll(seat) })
	require.Equal(t, 0, code, "the command's own status: %s", stderr)
	assert.Contains(t, stderr, "seat "+seat+" keeps the login of alice")
	data, err := os.ReadFile(filepath.Join(seat, ".credentials.json"))
	require.NoError(t, err, "the private seat is kept: %s", stderr)
	assert.Equal(t, marker+"-rt-alice-1", refreshToken(t, data))

	// The lock gone (stale, or its CLI back), a later run settles the seat.
	require.NoError(t, os.Remove(filepath.Join(seat, ".oauth_refresh.lock")))
	_, stderr, code = runCLI(t, append(globals, "run", "--seat", seat, "--sub", "alice", "--", "true")...)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, marker+"-rt-alice-1", storedRefreshToken(t, globals, "alice"))
}

// A settle that cannot read the seat (a CLI's lock still held) leaves the
// login there, pending, and its error still says why.
func TestASettleThatCannotReadTheSeatIsPending(t *testing.T) {
	p, _, _, a := aliceRefreshedInASeat(t)
	defer func() { _ = a.Release() }()
	lock := filepath.Join(a.Seat(), ".oauth_refresh.lock")
	require.NoError(t, os.Mkdir(lock, 0o700)) // a killed CLI's, fresh
	_, err := etcd.SettleSeat(context.Background(), p, a.Seat())
	require.ErrorIs(t, err, etcd.ErrPending)
	require.ErrorIs(t, err, credslots.ErrLockTimeout)
	data, err := os.ReadFile(filepath.Join(a.Seat(), ".credentials.json"))
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-1", refreshToken(t, data))
	require.NoError(t, os.Remove(lock))
}
