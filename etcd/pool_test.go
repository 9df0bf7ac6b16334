package etcd_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
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

var later = time.Now().Add(3 * time.Hour)

func TestLeaseWritesOnlyTheLoginIntoTheSeatAndReleaseTakesItBack(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c.endpoints()...)
	p := newPool(t, cli, testPrefix(t), writeKey(t))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))

	seat := filepath.Join(t.TempDir(), "seat")
	require.NoError(t, os.MkdirAll(seat, 0o700))
	// The seat's own keys (MCP logins) stay in the seat.
	require.NoError(t, os.WriteFile(filepath.Join(seat, ".credentials.json"), []byte(`{"mcpOAuth":{"s":{"refreshToken":"SECRET-mcp"}}}`), 0o600))
	l, err := p.Lease(ctx, seat)
	require.NoError(t, err)
	assert.Equal(t, "alice", l.Sub())
	data, err := os.ReadFile(filepath.Join(seat, ".credentials.json"))
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-0", refreshToken(t, data))
	assert.Contains(t, string(data), "SECRET-mcp")
	fi, err := os.Stat(filepath.Join(seat, ".credentials.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// The seat is this lease's: no other lease may use it.
	_, err = p.Lease(ctx, seat)
	require.ErrorIs(t, err, etcd.ErrLeased)
	// A seat path through a symlinked directory is refused.
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(t.TempDir(), link))
	_, err = p.Lease(ctx, filepath.Join(link, "seat"))
	require.ErrorContains(t, err, "symlink")

	// A second lease finds nothing free, and says why.
	_, err = p.Lease(ctx, t.TempDir())
	require.ErrorIs(t, err, etcd.ErrNoFreeSub)
	assert.Contains(t, err.Error(), "alice: leased")
	_, err = p.Lease(ctx, t.TempDir(), etcd.LeaseSub("alice"))
	require.ErrorIs(t, err, etcd.ErrLeased)
	_, err = p.Export(ctx, "alice")
	require.ErrorIs(t, err, etcd.ErrLeased)
	infos, err := p.Leases(ctx)
	require.NoError(t, err)
	require.Len(t, infos, 1)
	assert.Equal(t, seat, infos[0].Seat)
	assert.Equal(t, os.Getpid(), infos[0].PID)

	// The CLI refreshes in the seat, with its own key beside the login.
	refreshed := claudeLogin("alice", 1, later.Add(time.Hour))
	require.NoError(t, os.WriteFile(filepath.Join(seat, ".credentials.json"),
		append(refreshed[:len(refreshed)-1], []byte(`,"mcpOAuth":{"s":{"refreshToken":"SECRET-mcp"}}}`)...), 0o600))
	require.NoError(t, l.Sync())
	require.NoError(t, l.Release())
	select {
	case <-l.Done():
	default:
		t.Fatal("Done stays open after Release")
	}

	stored, err := p.Export(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-1", refreshToken(t, stored))
	assert.NotContains(t, string(stored), "mcp", "only claudeAiOauth moves into the pool")
	data, err = os.ReadFile(filepath.Join(seat, ".credentials.json"))
	require.NoError(t, err)
	assert.NotContains(t, string(data), "claudeAiOauth", "the login left the seat")
	assert.Contains(t, string(data), "SECRET-mcp", "the seat's own keys stay")
	infos, err = p.Leases(ctx)
	require.NoError(t, err)
	assert.Empty(t, infos)
	assertNoTokenStored(t, cli)
}

func TestImportRefusesALoginAnotherSubHolds(t *testing.T) {
	c := sharedCluster(t)
	p := newPool(t, newClient(t, c.endpoints()...), testPrefix(t), writeKey(t))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	err := p.Import(ctx, "bob", claudeLogin("alice", 0, later))
	require.ErrorIs(t, err, etcd.ErrDuplicate)
	assert.NotContains(t, err.Error(), marker)
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 1, later.Add(time.Hour))), "a sub's own login may be replaced by a newer one")
	require.ErrorIs(t, p.Import(ctx, "alice", claudeLogin("alice", 2, later)), etcd.ErrOlder, "never by an older one")
	require.Error(t, p.Import(ctx, "bob", []byte(`{"claudeAiOauth":{"accessToken":"","refreshToken":"x","expiresAt":1}}`)))
	require.Error(t, p.Import(ctx, "../x", claudeLogin("x", 0, later)))
	_, err = p.Export(ctx, "nobody")
	require.ErrorIs(t, err, etcd.ErrUnknownSub)
}

func TestLeasePicksTheFreshFreeSubThatLastsLongest(t *testing.T) {
	c := sharedCluster(t)
	p := newPool(t, newClient(t, c.endpoints()...), testPrefix(t), writeKey(t))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "short", claudeLogin("short", 0, time.Now().Add(time.Hour))))
	require.NoError(t, p.Import(ctx, "long", claudeLogin("long", 0, later)))
	require.NoError(t, p.Import(ctx, "stale", claudeLogin("stale", 0, time.Now().Add(-time.Hour))))
	a, err := p.Lease(ctx, t.TempDir())
	require.NoError(t, err)
	b, err := p.Lease(ctx, t.TempDir())
	require.NoError(t, err)
	assert.Equal(t, []string{"long", "short"}, []string{a.Sub(), b.Sub()})
	_, err = p.Lease(ctx, t.TempDir())
	require.ErrorIs(t, err, etcd.ErrNoFreeSub)
	assert.Contains(t, err.Error(), "stale: expired")

	// LeaseWait waits until a lease ends.
	go func() { time.Sleep(300 * time.Millisecond); _ = a.Release() }()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	w, err := p.Lease(wctx, t.TempDir(), etcd.LeaseWait())
	require.NoError(t, err)
	assert.Equal(t, "long", w.Sub())
	require.NoError(t, w.Release())
	require.NoError(t, b.Release())
}

// endedUnseen is a context that ends without its Done channel saying so:
// its Err turns to DeadlineExceeded once end is closed, while Done never
// closes. A waiting lease then sees the end only in the round after its
// wait, as it does when a change it watched for and the deadline come
// together.
type endedUnseen struct {
	context.Context
	end chan struct{}
}

func (c endedUnseen) Done() <-chan struct{} { return nil }

func (c endedUnseen) Err() error {
	select {
	case <-c.end:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// A waiting lease whose context ends returns the refusal it waited on,
// wrapping the context's error, however the end is seen: the command
// exits "no sub free", not with a usage error.
func TestLeaseWaitEndsWithItsRefusal(t *testing.T) {
	p := aliceLeasedElsewhere(t)
	wctx := endedUnseen{Context: context.Background(), end: make(chan struct{})}
	errc := startWaitingLease(t, p, wctx, nil)
	close(wctx.end)
	// A change the wait watches for ends it; the next round sees the end.
	require.NoError(t, p.Import(context.Background(), "bob", claudeLogin("bob", 0, later)))
	assertWaitEnded(t, errc, context.DeadlineExceeded)
}

// A waiting lease whose context is canceled as a later round asks the
// cluster again returns the refusal it waited on too, not the request's
// bare error.
func TestLeaseWaitCanceledMidRoundEndsWithItsRefusal(t *testing.T) {
	p := aliceLeasedElsewhere(t)
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rounds := 0
	errc := startWaitingLease(t, p, wctx, func(point string) {
		if point == "round" {
			if rounds++; rounds == 2 {
				cancel() // past the round's check of ctx, before its requests
			}
		}
	})
	require.NoError(t, p.Import(context.Background(), "bob", claudeLogin("bob", 0, later)))
	assertWaitEnded(t, errc, context.Canceled)
}

// aliceLeasedElsewhere is a pool whose one sub, alice, another seat holds
// until the test ends.
func aliceLeasedElsewhere(t *testing.T) *etcd.Pool {
	t.Helper()
	c := sharedCluster(t)
	p := newPool(t, newClient(t, c.endpoints()...), testPrefix(t), writeKey(t))
	require.NoError(t, p.Import(context.Background(), "alice", claudeLogin("alice", 0, later)))
	a, err := p.Lease(context.Background(), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Release() })
	return p
}

// startWaitingLease starts a waiting lease of alice on p with ctx and
// returns once it waits; its error comes on the channel. onPoint, when
// set, sees every pool point too.
func startWaitingLease(t *testing.T, p *etcd.Pool, ctx context.Context, onPoint func(string)) <-chan error {
	t.Helper()
	waiting := make(chan struct{}, 1)
	etcd.OnPoolPoint(t, func(point string) error {
		if point == "waiting" {
			select {
			case waiting <- struct{}{}:
			default:
			}
		}
		if onPoint != nil {
			onPoint(point)
		}
		return nil
	})
	errc := make(chan error, 1)
	go func() {
		_, err := p.Lease(ctx, t.TempDir(), etcd.LeaseSub("alice"), etcd.LeaseWait())
		errc <- err
	}()
	select {
	case <-waiting:
	case err := <-errc:
		t.Fatalf("the lease did not wait: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the lease never waited")
	}
	return errc
}

// assertWaitEnded checks that the waiting lease ended with its refusal,
// wrapping ctxErr.
func assertWaitEnded(t *testing.T, errc <-chan error, ctxErr error) {
	t.Helper()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, etcd.ErrNoFreeSub)
		assert.ErrorIs(t, err, ctxErr)
		assert.Contains(t, err.Error(), "alice")
	case <-time.After(testTTL + 5*time.Second):
		t.Fatal("a waiting lease whose context ended kept waiting")
	}
}

// A lessee whose lease was lost writes nothing back: the newer login that
// the next lessee wrote stays, and the late one is kept as a backup.
func TestLateWriteBackIsRefusedByTheFence(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c.endpoints()...)
	keyFile := writeKey(t)
	p := newPool(t, cli, testPrefix(t), keyFile)
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	seatA, seatB := t.TempDir(), t.TempDir()
	a, err := p.Lease(ctx, seatA)
	require.NoError(t, err)

	// The cluster ends a's lease (as it does when a cannot renew).
	_, err = cli.Revoke(ctx, clientv3.LeaseID(a.ID()))
	require.NoError(t, err)
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a lost lease is not reported")
	}
	require.ErrorIs(t, a.Err(), etcd.ErrLeaseLost)

	b, err := p.Lease(ctx, seatB, etcd.LeaseSub("alice"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(seatB, ".credentials.json"), claudeLogin("alice", 1, later.Add(time.Hour)), 0o600))
	require.NoError(t, b.Sync())

	// a's CLI refreshed too, late: its write-back is fenced out.
	require.NoError(t, os.WriteFile(filepath.Join(seatA, ".credentials.json"), claudeLogin("alice", 7, later.Add(2*time.Hour)), 0o600))
	require.ErrorIs(t, a.Sync(), etcd.ErrFenced)
	err = a.Release()
	require.ErrorIs(t, err, etcd.ErrFenced)
	assert.Contains(t, err.Error(), "backup")
	assert.NotContains(t, err.Error(), marker)
	require.NoError(t, b.Release())

	stored, err := p.Export(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-1", refreshToken(t, stored), "the newer login was never overwritten")
	st, err := p.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st, 1)
	assert.Equal(t, 1, st[0].Backups)
	_, err = os.Stat(filepath.Join(seatA, ".credentials.json"))
	assert.True(t, os.IsNotExist(err), "the late login left seat a")
	assertNoTokenStored(t, cli)

	// The backup reads back: listed, then exported, by the library and by
	// the command.
	bs, err := p.Backups(ctx, "")
	require.NoError(t, err)
	require.Len(t, bs, 1)
	assert.Equal(t, "alice", bs[0].Sub)
	assert.True(t, bs[0].Fresh, bs[0].Reason)
	require.NotNil(t, bs[0].Expiry)
	assert.True(t, bs[0].Expiry.Equal(later.Add(2*time.Hour).Truncate(time.Millisecond)))
	assert.WithinDuration(t, time.Now(), bs[0].Time, time.Minute)
	doc, err := p.ExportBackup(ctx, bs[0].Name)
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-7", refreshToken(t, doc), "the late login, whole")
	other, err := p.Backups(ctx, "bob")
	require.NoError(t, err)
	assert.Empty(t, other)
	for _, bad := range []string{"alice", "alice/1", "../logins/alice", "alice/" + strings.Repeat("9", 20) + "/x", "alice/" + strings.Repeat("0", 20)} {
		_, err := p.ExportBackup(ctx, bad)
		assert.ErrorIs(t, err, etcd.ErrNoBackup, bad)
	}

	globals := []string{"--endpoints", c.endpointList(), "--prefix", testPrefix(t), "--key-file", keyFile}
	out, stderr, code := runCLI(t, append(globals, "backups", "alice")...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, bs[0].Name)
	assert.NotContains(t, out, marker)
	file := filepath.Join(t.TempDir(), "back.json")
	out, stderr, code = runCLI(t, append(globals, "export-backup", bs[0].Name, file)...)
	require.Equal(t, 0, code, stderr)
	assert.NotContains(t, out+stderr, marker)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, doc, data)
	fi, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	_, stderr, code = runCLI(t, append(globals, "export-backup", bs[0].Name, file)...)
	assert.Equal(t, 1, code, "an existing file is never overwritten")
	assert.Contains(t, stderr, "exists: not overwritten")
	again, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, data, again)
	_, stderr, code = runCLI(t, append(globals, "export-backup", "alice/nope", filepath.Join(t.TempDir(), "x.json"))...)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "not a backup's name")
	_, _, code = runCLI(t, append(globals, "backups", "alice", "bob")...)
	assert.Equal(t, 2, code)
}

// A seat an ended lease left behind is settled before the next lease: its
// login goes back into the pool when the stored one did not change.
func TestLeftoverSeatIsWrittenBackWhenTheLoginIsUnchanged(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c.endpoints()...)
	key := writeKey(t)
	p := newPool(t, cli, testPrefix(t), key)
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	seat := t.TempDir()
	a, err := p.Lease(ctx, seat)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(seat, ".credentials.json"), claudeLogin("alice", 1, later.Add(time.Hour)), 0o600))
	// The lessee is gone without a word: its session ended, its
	// write-back never made, its hold on the seat gone with its process.
	_, err = cli.Revoke(ctx, clientv3.LeaseID(a.ID()))
	require.NoError(t, err)
	<-a.Done()
	_, err = p.Lease(ctx, seat, etcd.LeaseSub("alice"))
	require.ErrorIs(t, err, etcd.ErrLeased, "while its lessee runs, a lost lease's seat is its own until it is released")
	etcd.GoneFromSeat(a)

	// The next lease of that seat writes the leftover back first, then
	// hands out the login it wrote.
	b, err := p.Lease(ctx, seat, etcd.LeaseSub("alice"))
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(seat, ".credentials.json"))
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-1", refreshToken(t, data))
	// The old lease's Release leaves the seat to its new lease.
	require.NoError(t, a.Release())
	data, err = os.ReadFile(filepath.Join(seat, ".credentials.json"))
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-1", refreshToken(t, data))
	require.NoError(t, b.Release())
	stored, err := p.Export(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-1", refreshToken(t, stored))
}

// errStopped stands for a lessee killed at a point of its write-back, or
// an answer lost there.
var errStopped = errors.New("stopped")

// A lessee that stops after its write-back landed and before it noted the
// new revision leaves a seat whose login the pool already holds, or one its
// CLI refreshed from it since: the next settle tells that write-back for the
// seat's own, keeps nothing aside and frees the sub at once. So it does when
// the lessee stopped again in the next write-back, before its transaction.
func TestAWriteBackThatLandedUnnotedIsTheSeatsOwn(t *testing.T) {
	for _, tc := range []struct {
		name      string
		refreshed bool // the seat's CLI refreshed again after the write-back
		again     bool // and the lessee stopped in the next write-back, before its transaction
		outcome   string
		stored    string
	}{
		{"the seat holds what landed", false, false, "unchanged", marker + "-rt-alice-1"},
		{"the seat refreshed since", true, false, "written back", marker + "-rt-alice-2"},
		{"the seat refreshed and the next write-back stopped", true, true, "written back", marker + "-rt-alice-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, cli, prefix, a := aliceRefreshedInASeat(t)
			ctx, seat := context.Background(), a.Seat()
			imported := loginRevision(t, cli, prefix, "alice")
			resume := etcd.StopAfterWriteBack(t, errStopped)
			require.ErrorIs(t, a.Sync(), errStopped)
			resume()
			require.Greater(t, loginRevision(t, cli, prefix, "alice"), imported, "the write-back landed")
			stored, err := p.Export(ctx, "alice")
			require.ErrorIs(t, err, etcd.ErrLeased, "a's lease lives on: its lessee stopped, the cluster has not noticed")
			assert.Nil(t, stored)
			if tc.refreshed {
				require.NoError(t, os.WriteFile(filepath.Join(seat, ".credentials.json"), claudeLogin("alice", 2, later.Add(2*time.Hour)), 0o600))
			}
			if tc.again {
				etcd.OnPoolPoint(t, func(point string) error {
					if point == "checked" {
						return errStopped
					}
					return nil
				})
				require.ErrorIs(t, a.Sync(), errStopped)
				etcd.OnPoolPoint(t, func(string) error { return nil })
			}

			settled, err := etcd.SettleSeat(ctx, p, seat)
			require.NoError(t, err)
			assert.Equal(t, tc.outcome, settled.Outcome)
			stored, err = p.Export(ctx, "alice")
			require.NoError(t, err, "the settle ended a's lease")
			assert.Equal(t, tc.stored, refreshToken(t, stored))
			st, err := p.Status(ctx)
			require.NoError(t, err)
			require.Len(t, st, 1)
			assert.Zero(t, st[0].Backups, "nothing was kept aside")
			_, err = os.Stat(filepath.Join(seat, ".credentials.json"))
			assert.True(t, os.IsNotExist(err), "the seat was cleared")
			require.NoError(t, a.Release(), "the seat is settled: a's Release leaves it be")
		})
	}
}

// A write-back whose answer was lost is known for the lease's own by the next
// Sync, which does not call the lease lost: whether the seat still holds
// that login or its CLI refreshed again since.
func TestAWriteBackWithItsAnswerLostIsNotFencedOut(t *testing.T) {
	for _, refreshed := range []bool{false, true} {
		t.Run(fmt.Sprintf("refreshed=%v", refreshed), func(t *testing.T) {
			p, _, _, a := aliceRefreshedInASeat(t)
			ctx, seat := context.Background(), a.Seat()
			resume := etcd.StopAfterWriteBack(t, errStopped)
			require.ErrorIs(t, a.Sync(), errStopped)
			resume()
			if !refreshed {
				require.NoError(t, a.Sync())
				require.NoError(t, a.Err(), "the lease is not lost")
			}
			require.NoError(t, os.WriteFile(filepath.Join(seat, ".credentials.json"), claudeLogin("alice", 2, later.Add(2*time.Hour)), 0o600))
			require.NoError(t, a.Sync(), "the next refresh is written back on the revision that landed")
			require.NoError(t, a.Err(), "the lease is not lost")
			require.NoError(t, a.Release())
			stored, err := p.Export(ctx, "alice")
			require.NoError(t, err)
			assert.Equal(t, marker+"-rt-alice-2", refreshToken(t, stored))
			st, err := p.Status(ctx)
			require.NoError(t, err)
			require.Len(t, st, 1)
			assert.Zero(t, st[0].Backups)
		})
	}
}

// aliceRefreshedInASeat imports alice (rt-alice-0) into a pool of its own,
// leases her into a seat and puts her refreshed login (rt-alice-1) there,
// not yet written back. It returns the pool, its client and prefix, and
// the lease.
func aliceRefreshedInASeat(t *testing.T) (*etcd.Pool, *clientv3.Client, string, *etcd.Lease) {
	t.Helper()
	c := sharedCluster(t)
	cli := newClient(t, c.endpoints()...)
	prefix := testPrefix(t)
	p := newPool(t, cli, prefix, writeKey(t))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	a, err := p.Lease(ctx, t.TempDir())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(a.Seat(), ".credentials.json"), claudeLogin("alice", 1, later.Add(time.Hour)), 0o600))
	return p, cli, prefix, a
}

func TestWrongOrShortKey(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c.endpoints()...)
	prefix := testPrefix(t)
	p := newPool(t, cli, prefix, writeKey(t))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))

	other := newPool(t, cli, prefix, writeKey(t))
	_, err := other.Export(ctx, "alice")
	require.ErrorIs(t, err, etcd.ErrBadKey)
	assert.Contains(t, err.Error(), "does not open with this key")
	_, err = other.Status(ctx)
	require.ErrorIs(t, err, etcd.ErrBadKey)
	_, err = other.Lease(ctx, t.TempDir())
	require.ErrorIs(t, err, etcd.ErrBadKey)

	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
		mode os.FileMode
		want string
	}{
		{"short", make([]byte, 16), 0o600, "holds 16 bytes; want exactly 32"},
		{"long", make([]byte, 33), 0o600, "holds 33 bytes; want exactly 32"},
		{"empty", nil, 0o600, "holds 0 bytes"},
		{"open to others", make([]byte, 32), 0o644, "others may read it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			require.NoError(t, os.WriteFile(path, tc.data, tc.mode))
			require.NoError(t, os.Chmod(path, tc.mode))
			_, err := etcd.ReadKeyFile(path)
			require.ErrorIs(t, err, etcd.ErrBadKey)
			assert.Contains(t, err.Error(), tc.want)
			_, stderr, code := runCLI(t, "--endpoints", c.endpointList(), "--key-file", path, "status")
			assert.Equal(t, 2, code)
			assert.Contains(t, stderr, tc.want)
		})
	}
	_, err = etcd.Open(cli, etcd.WithKey(make([]byte, 31)))
	require.ErrorIs(t, err, etcd.ErrBadKey)
	_, err = etcd.Open(cli)
	require.ErrorIs(t, err, etcd.ErrBadKey)
}

func TestCodexMovesTheWholeFile(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c.endpoints()...)
	p := newPool(t, cli, testPrefix(t), writeKey(t), etcd.WithFormat(credslots.CodexCLI))
	ctx := context.Background()
	doc := codexLogin("acct-1", later, "SECRET-a")
	require.NoError(t, p.Import(ctx, "work", doc))
	require.ErrorIs(t, p.Import(ctx, "home", codexLogin("acct-1", later, "SECRET-a")), etcd.ErrDuplicate, "work's refresh token")
	require.ErrorIs(t, p.Import(ctx, "home", codexLogin("acct-1", later, "SECRET-b")), etcd.ErrDuplicate, "work's account: a sub is one account")
	seat := t.TempDir()
	l, err := p.Lease(ctx, seat)
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(seat, "auth.json"))
	require.NoError(t, err)
	assert.JSONEq(t, string(doc), string(got))
	newer := codexLogin("acct-1", later.Add(time.Hour), "SECRET-c")
	require.NoError(t, os.WriteFile(filepath.Join(seat, "auth.json"), newer, 0o600))
	require.NoError(t, l.Release())
	_, err = os.Stat(filepath.Join(seat, "auth.json"))
	assert.True(t, os.IsNotExist(err), "the whole file leaves the seat")
	stored, err := p.Export(ctx, "work")
	require.NoError(t, err)
	assert.JSONEq(t, string(newer), string(stored))
	assertNoTokenStored(t, cli)
}

// codexLogin is a Codex CLI auth.json whose access token expires at exp.
func codexLogin(account string, exp time.Time, refresh string) []byte {
	payload := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"exp":%d}`, exp.Unix())))
	return []byte(fmt.Sprintf(`{"OPENAI_API_KEY":null,"tokens":{"id_token":"h.%s.s","access_token":"h.%s.s","refresh_token":"%s","account_id":"%s"}}`,
		payload, payload, refresh, account))
}
