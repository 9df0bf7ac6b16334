package credslots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// leaseFixture is a creds dir with three fresh slots of distinct expiries
// (alice latest, then bob, then erik) and identities captured, no live path.
func leaseFixture(t testing.TB, opts ...Option) *fixture {
	t.Helper()
	f := newFixture(t, opts...)
	for i, sub := range []string{"erik", "bob", "alice"} {
		writeSlot(t, f.slot(sub), fresh.Add(time.Duration(i)*time.Hour), "rt-"+sub+"-0")
		_, err := f.m.CaptureSlotFingerprint(sub)
		require.NoError(t, err)
	}
	return f
}

// seatDir is a seat outside the creds dir.
func seatDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "seat")
}

// claudeMember returns the raw claudeAiOauth object of a file, compacted.
func claudeMember(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data, &doc))
	return string(compactJSON(doc[accountKey]))
}

// seatDoc is a seat's file: a login and other CLI state.
func seatDoc(t testing.TB, login []byte, extra map[string]any) []byte {
	t.Helper()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(login, &doc))
	for k, v := range extra {
		doc[k] = v
	}
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	return b
}

func TestLeaseHandsOutTheBestFreeSubAndReleases(t *testing.T) {
	f := leaseFixture(t)
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat)
	require.NoError(t, err)
	assert.Equal(t, "alice", l.Sub(), "the latest expiry first, as SwitchNext")
	assert.Equal(t, seat, l.Seat())
	require.NotNil(t, l.File())

	fi, err := os.Stat(seat)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "seat created 0700")
	seatFile := filepath.Join(seat, DefaultLiveName)
	fi, err = os.Lstat(seatFile)
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular())
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	assert.Equal(t, claudeMember(t, f.slot("alice")), claudeMember(t, seatFile))

	infos, err := f.m.Leases()
	require.NoError(t, err)
	require.Len(t, infos, 1)
	assert.Equal(t, "alice", infos[0].Sub)
	assert.Equal(t, seat, infos[0].Seat)
	assert.Equal(t, os.Getpid(), infos[0].PID)
	assert.True(t, infos[0].Held)
	assert.Nil(t, infos[0].Released)

	st, err := f.m.Status()
	require.NoError(t, err)
	for _, s := range st.Slots {
		if s.Sub == "alice" {
			require.NotNil(t, s.Lease, "status shows the lease")
			assert.Equal(t, seat, s.Lease.Seat)
		} else {
			assert.Nil(t, s.Lease)
		}
	}
	for _, c := range f.m.Candidates() {
		if c.Sub == "alice" {
			require.NotNil(t, c.Lease)
			assert.False(t, c.Usable, "a leased sub is not usable elsewhere")
			assert.Contains(t, c.PassedOver, "leased to "+seat)
		}
	}

	require.NoError(t, l.Release())
	require.NoError(t, l.Release(), "a second release does nothing")
	_, err = os.Lstat(seatFile)
	assert.True(t, os.IsNotExist(err), "the login left the seat")
	infos, err = f.m.Leases()
	require.NoError(t, err)
	require.Len(t, infos, 1)
	assert.False(t, infos[0].Held)
	assert.NotNil(t, infos[0].Released)
	assert.False(t, f.m.leaseHeld("alice"))

	entries, err := f.m.Journal()
	require.NoError(t, err)
	var ops []string
	for _, e := range entries {
		if e.Op == opLease || e.Op == opRelease {
			ops = append(ops, e.Op+" "+e.Sub+" "+e.Seat)
		}
	}
	assert.Equal(t, []string{"lease alice " + seat, "release alice " + seat}, ops)
}

func TestLeaseMovesOnlyTheAccountMember(t *testing.T) {
	f := leaseFixture(t)
	// The slot carries home's MCP state; the seat has its own.
	slotDoc := seatDoc(t, claudeDoc(fresh.Add(3*time.Hour), "rt-alice-0"), map[string]any{"mcpOAuth": map[string]any{"home": "mcp-home"}})
	writeFile(t, f.slot("alice"), slotDoc)
	_, err := f.m.CaptureSlotFingerprint("alice")
	require.NoError(t, err)
	seat := seatDir(t)
	seatFile := filepath.Join(seat, DefaultLiveName)
	writeFile(t, seatFile, seatDoc(t, claudeDoc(stale, "rt-old"), map[string]any{"mcpOAuth": map[string]any{"seat": "mcp-seat"}, "pluginSecrets": map[string]any{"p": 1}}))

	l, err := f.m.Lease(context.Background(), seat, LeaseSub("alice"))
	require.NoError(t, err)
	doc := readJSONFile(t, seatFile)
	assert.Equal(t, map[string]any{"seat": "mcp-seat"}, doc["mcpOAuth"], "the seat keeps its own MCP logins")
	assert.NotNil(t, doc["pluginSecrets"])
	assert.Equal(t, claudeMember(t, f.slot("alice")), claudeMember(t, seatFile))

	backups, err := f.m.Backups()
	require.NoError(t, err)
	var kept bool
	for _, b := range backups {
		if strings.Contains(b.Name, ".credentials.json.alice.seat") {
			kept = true
			assert.Equal(t, b.Name, l.Kept(), "the lease names where the seat's login went")
			data, err := os.ReadFile(b.Path)
			require.NoError(t, err)
			assert.Equal(t, "rt-old", refreshTokenOf(data))
		}
	}
	assert.True(t, kept, "the login the seat held before is kept as a backup")
	require.NoError(t, l.Release())
	doc = readJSONFile(t, seatFile)
	assert.NotContains(t, doc, accountKey, "the login left the seat")

	// Into the seat again, now holding no login: nothing kept.
	l, err = f.m.Lease(context.Background(), seat, LeaseSub("alice"))
	require.NoError(t, err)
	assert.Empty(t, l.Kept())
	require.NoError(t, l.Release())
	assert.Equal(t, map[string]any{"seat": "mcp-seat"}, doc["mcpOAuth"], "the seat's other keys stay")
	slot := readJSONFile(t, f.slot("alice"))
	assert.Equal(t, map[string]any{"home": "mcp-home"}, slot["mcpOAuth"], "the slot's other keys never move")
}

func readJSONFile(t testing.TB, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(data, &doc))
	return doc
}

// cliRefresh writes a refreshed login into a seat the way Claude Code does:
// a temporary file renamed over the credential file, keeping other keys.
func cliRefresh(t testing.TB, seat string, expiry time.Time, rt string) {
	t.Helper()
	path := filepath.Join(seat, DefaultLiveName)
	doc := map[string]any{}
	if data, err := os.ReadFile(path); err == nil {
		require.NoError(t, json.Unmarshal(data, &doc))
	}
	var login map[string]any
	require.NoError(t, json.Unmarshal(claudeDoc(expiry, rt), &login))
	doc[accountKey] = login[accountKey]
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path+".tmp.cli", b, 0o600))
	require.NoError(t, os.Rename(path+".tmp.cli", path))
}

func TestLeaseSyncWritesBackANewerLogin(t *testing.T) {
	f := leaseFixture(t)
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	before, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)

	require.NoError(t, l.Sync(), "nothing new: nothing written")
	after, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, before, after)

	cliRefresh(t, seat, fresh.Add(20*time.Hour), "rt-bob-1")
	require.NoError(t, l.Sync())
	slot, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, "rt-bob-1", refreshTokenOf(slot), "the newest token is in the slot")
	prev, err := os.ReadFile(f.slot("bob") + prevSuffix)
	require.NoError(t, err)
	assert.Equal(t, before, prev, "the old slot is its backup")
	id, err := f.m.DetectSlotIdentityDrift("bob")
	require.NoError(t, err)
	assert.False(t, id.Drift, "the written-back login is the captured identity")

	// Older, blank and unreadable logins are never written back: an older
	// copy (the login handed out before, its refresh token known) is no
	// rotation.
	for _, doc := range [][]byte{
		before,
		[]byte(`{"claudeAiOauth":{"accessToken":"","refreshToken":"","expiresAt":` + jsonInt(fresh.Add(40*time.Hour).UnixMilli()) + `}}`),
		[]byte(`{"claudeAiOauth":"nope"}`),
	} {
		writeFile(t, filepath.Join(seat, DefaultLiveName), doc)
		require.NoError(t, l.Sync())
		slot, err := os.ReadFile(f.slot("bob"))
		require.NoError(t, err)
		assert.Equal(t, "rt-bob-1", refreshTokenOf(slot))
	}

	cliRefresh(t, seat, fresh.Add(30*time.Hour), "rt-bob-2")
	require.NoError(t, l.Release(), "the release syncs last")
	slot, err = os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, "rt-bob-2", refreshTokenOf(slot))
	assert.Error(t, l.Sync(), "a released lease syncs no more")
}

func TestLeaseRecoversADeadSeatBeforeJudging(t *testing.T) {
	f := leaseFixture(t)
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("erik"))
	require.NoError(t, err)
	// The CLI refreshed in the seat; then the lessee died without a
	// release: its lock closed with it, its record and seat stay.
	cliRefresh(t, seat, fresh.Add(10*time.Hour), "rt-erik-1")
	require.NoError(t, l.File().Close())
	// Meanwhile the slot's own token went stale: the seat holds the only
	// live login.
	writeSlot(t, f.slot("erik"), stale, "rt-erik-0")
	for _, c := range f.m.Candidates() {
		if c.Sub == "erik" {
			assert.False(t, c.Usable, "judged by its stale slot until recovered")
		}
	}

	st, err := f.m.Status()
	require.NoError(t, err)
	assert.Contains(t, strings.Join(st.Problems, "\n"), "sub erik: the lease to "+seat+" ended without a release")
	l2, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("erik"))
	require.NoError(t, err, "the dead seat's login is written back before erik is judged")
	st, err = f.m.Status()
	require.NoError(t, err)
	assert.NotContains(t, strings.Join(st.Problems, "\n"), "ended without a release", "recovered")
	slot, err := os.ReadFile(f.slot("erik"))
	require.NoError(t, err)
	assert.Equal(t, "rt-erik-1", refreshTokenOf(slot))
	_, err = os.Lstat(filepath.Join(seat, DefaultLiveName))
	assert.True(t, os.IsNotExist(err), "the login left the dead seat")
	require.NoError(t, l2.Release())

	// A seat login that is older (an earlier login of erik's, its refresh
	// token known: no rotation of the handed one), blank or another sub's
	// never goes back.
	l3, err := f.m.Lease(context.Background(), seat, LeaseSub("erik"))
	require.NoError(t, err)
	writeFile(t, filepath.Join(seat, DefaultLiveName), claudeDoc(fresh, "rt-erik-0"))
	require.NoError(t, l3.File().Close())
	l4, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("erik"))
	require.NoError(t, err)
	slot, err = os.ReadFile(f.slot("erik"))
	require.NoError(t, err)
	assert.Equal(t, "rt-erik-1", refreshTokenOf(slot))
	backups, err := f.m.Backups()
	require.NoError(t, err)
	var kept bool
	for _, b := range backups {
		kept = kept || strings.Contains(b.Name, ".credentials.json.erik.seat")
	}
	assert.True(t, kept, "the older seat login is kept as a backup, not lost")
	require.NoError(t, l4.Release())
}

func TestLeaseRecoveryRemovesADeadPrivateSeat(t *testing.T) {
	f := leaseFixture(t)
	private := filepath.Join(f.dir, privateDirName, SeatsDirName, "123-abc")
	l, err := f.m.Lease(context.Background(), private, LeaseSub("bob"))
	require.NoError(t, err)
	cliRefresh(t, private, fresh.Add(30*time.Hour), "rt-bob-1")
	require.NoError(t, l.File().Close()) // the lessee died
	other := filepath.Join(t.TempDir(), "seat")
	l2, err := f.m.Lease(context.Background(), other, LeaseSub("alice"))
	require.NoError(t, err, "any lease recovers every ended lease's seat")
	_, err = os.Lstat(private)
	assert.True(t, os.IsNotExist(err), "the dead private seat is removed once recovered")
	slot, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, "rt-bob-1", refreshTokenOf(slot))
	require.NoError(t, l2.Release())
	// A seat that is not a private one is never removed.
	_, err = os.Stat(other)
	assert.NoError(t, err)
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestLeaseRefusals(t *testing.T) {
	f := leaseFixture(t)
	ctx := context.Background()
	held, err := f.m.Lease(ctx, seatDir(t), LeaseSub("bob"))
	require.NoError(t, err)
	defer held.Release()

	outside := t.TempDir()
	linked := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(outside, linked))
	notDir := filepath.Join(t.TempDir(), "file")
	writeFile(t, notDir, []byte("x"))

	tests := []struct {
		name     string
		seat     string
		opts     []LeaseOption
		sentinel error
		contains string
	}{
		{"the creds dir itself", f.dir, nil, nil, "is the creds dir"},
		{"inside the creds dir", filepath.Join(f.dir, "agent"), nil, nil, "inside the creds dir"},
		{"inside the private dir, not a seat", filepath.Join(f.dir, privateDirName, "backups"), nil, nil, "inside the creds dir"},
		{"through a symlinked directory", filepath.Join(linked, "seat"), nil, nil, "is a symlink"},
		{"a symlink itself", linked, nil, nil, "is a symlink"},
		{"through a file", filepath.Join(notDir, "seat"), nil, nil, "not a directory"},
		{"another held lease's seat", held.Seat(), nil, ErrLeased, "seat of bob's lease"},
		{"a leased sub", seatDir(t), []LeaseOption{LeaseSub("bob")}, ErrLeased, "bob: leased to"},
		{"a leased sub is no free sub", seatDir(t), []LeaseOption{LeaseSub("bob")}, ErrNoFreeSub, "bob: leased to"},
		{"unknown sub", seatDir(t), []LeaseOption{LeaseSub("zed")}, ErrUnknownSubscription, "zed"},
		{"no seat", "", nil, nil, "no seat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := f.m.Lease(ctx, tt.seat, tt.opts...)
			require.Error(t, err)
			assert.Nil(t, l)
			if tt.sentinel != nil {
				assert.ErrorIs(t, err, tt.sentinel)
			}
			assert.Contains(t, err.Error(), tt.contains)
		})
	}
	_, err = os.Lstat(filepath.Join(f.dir, "agent"))
	assert.True(t, os.IsNotExist(err), "a refused seat is not created")

	// A private seat of the command is accepted.
	private := filepath.Join(f.dir, privateDirName, SeatsDirName, "x")
	l, err := f.m.Lease(ctx, private)
	require.NoError(t, err)
	require.NoError(t, l.Release())

	// Unusable subs are passed over with their reasons.
	writeSlot(t, f.slot("alice"), stale, "rt-alice-0")
	require.NoError(t, f.m.Rest("erik", testNow.Add(time.Hour), "quota"))
	_, err = f.m.Lease(ctx, seatDir(t))
	require.ErrorIs(t, err, ErrNoFreeSub)
	assert.NotErrorIs(t, err, ErrLeased, "only a named sub's lease makes it ErrLeased")
	assert.Contains(t, err.Error(), "alice: expired")
	assert.Contains(t, err.Error(), "erik: resting")
	assert.Contains(t, err.Error(), "bob: leased to")

	// Waiting is bounded by the context.
	ctx2, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = f.m.Lease(ctx2, seatDir(t), LeaseWait())
	require.ErrorIs(t, err, ErrNoFreeSub)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
}

// endedUnseen is a context that ends without its Done channel saying so:
// its Err turns to DeadlineExceeded once end is closed, while Done never
// closes. A waiting Lease then sees the end only at the top of a polling
// round, as it does when its poll timer and the deadline fire together.
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

// TestLeaseWaitEndsWithItsRefusal: a waiting Lease whose context ends
// returns the refusal it waited on, wrapping the context's error, however
// the end is seen: not the bare context error.
func TestLeaseWaitEndsWithItsRefusal(t *testing.T) {
	f := leaseFixture(t)
	held, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("bob"))
	require.NoError(t, err)
	defer held.Release()

	// Ended after a few rounds: the first one, which makes the only
	// attempt (bob looks held after it), is long done by then.
	ctx := endedUnseen{Context: context.Background(), end: make(chan struct{})}
	time.AfterFunc(4*leasePoll, func() { close(ctx.end) })
	_, err = f.m.Lease(ctx, seatDir(t), LeaseSub("bob"), LeaseWait())
	require.ErrorIs(t, err, ErrNoFreeSub)
	assert.ErrorIs(t, err, ErrLeased)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "bob: leased to")

	// A context already ended tries nothing: its error alone.
	_, err = f.m.Lease(ctx, seatDir(t), LeaseSub("bob"), LeaseWait())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, ErrNoFreeSub)
}

// TestLeaseWaitKeepsAnAttemptsOwnError: an attempt that fails on its own
// (here a write) as the context ends returns that error, not a refusal
// that would hide it behind "no free sub".
func TestLeaseWaitKeepsAnAttemptsOwnError(t *testing.T) {
	ffs := &faultFS{inner: disk.OS{}, failAt: -1, ops: map[string]bool{"create": true}}
	f := leaseFixture(t, withFS(ffs))
	ctx := endedUnseen{Context: context.Background(), end: make(chan struct{})}
	ffs.mu.Lock()
	ffs.failAt = ffs.n + 1 // the lease's first atomic write
	ffs.mu.Unlock()
	var once sync.Once
	ffs.before = func(op, _ string) {
		if op == "create" {
			once.Do(func() { close(ctx.end) })
		}
	}
	_, err := f.m.Lease(ctx, seatDir(t), LeaseSub("alice"), LeaseWait())
	require.ErrorIs(t, err, errInjected)
	assert.NotErrorIs(t, err, ErrNoFreeSub)
	// The failed attempt left alice free and her login in her slot.
	l, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("alice"))
	require.NoError(t, err)
	seated, err := os.ReadFile(filepath.Join(l.Seat(), DefaultLiveName))
	require.NoError(t, err)
	assert.Equal(t, "rt-alice-0", refreshTokenOf(seated))
	require.NoError(t, l.Release())
}

func TestLeasesBesideHome(t *testing.T) {
	f := leaseFixture(t)
	ctx := context.Background()
	_, err := f.m.SwitchTo("alice", "home uses alice")
	require.NoError(t, err)

	l, err := f.m.Lease(ctx, seatDir(t))
	require.NoError(t, err)
	assert.Equal(t, "bob", l.Sub(), "the sub live at home is never leased")
	_, err = f.m.Lease(ctx, seatDir(t), LeaseSub("alice"))
	require.ErrorIs(t, err, ErrNoFreeSub)
	assert.Contains(t, err.Error(), "alice: live at home")

	// Home refreshed its login (a regular file): the journal's sub is still home's.
	f.refresh(t, claudeDoc(fresh.Add(9*time.Hour), "rt-alice-1"))
	_, err = f.m.Lease(ctx, seatDir(t), LeaseSub("alice"))
	require.ErrorIs(t, err, ErrNoFreeSub)
	_, err = f.m.HealDriftTo("alice")
	require.NoError(t, err)

	// Switching home to a leased sub is refused, even forced.
	for _, opts := range [][]SwitchOption{nil, {Force()}} {
		res, err := f.m.SwitchTo("bob", "x", opts...)
		require.ErrorIs(t, err, ErrLeased)
		assert.False(t, res.OK)
		assert.Contains(t, res.Reason, "leased to "+l.Seat())
	}
	// Healing, adopting or restoring into it is refused too.
	f.refresh(t, claudeDoc(fresh.Add(10*time.Hour), "rt-home-2"))
	_, err = f.m.HealDriftTo("bob", Force())
	require.ErrorIs(t, err, ErrLeased)
	_, err = f.m.Adopt("bob", Force())
	require.ErrorIs(t, err, ErrLeased)
	_, err = f.m.HealDriftTo("alice")
	require.NoError(t, err)
	writeFile(t, f.slot("bob")+prevSuffix, claudeDoc(fresh, "rt-bob-0"))
	require.ErrorIs(t, f.m.Restore(filepath.Base(f.slot("bob"))+prevSuffix, "bob"), ErrLeased)
	// SwitchNext passes it over.
	res, err := f.m.SwitchNext("rotate")
	require.NoError(t, err)
	assert.Equal(t, "erik", f.activeSub(t), res.Reason)
	require.NoError(t, l.Release())
	_, err = f.m.SwitchTo("bob", "free again")
	require.NoError(t, err)
}

func (f *fixture) activeSub(t testing.TB) string {
	t.Helper()
	sub, _ := f.m.ActiveSubscription()
	return sub
}

func TestLeaseContentionBetweenGoroutines(t *testing.T) {
	f := leaseFixture(t)
	var mu sync.Mutex
	holders := map[string]string{} // sub -> seat
	seatsOf := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				seat := filepath.Join(t.TempDir(), "seat")
				l, err := f.m.Lease(ctx, seat, LeaseWait())
				cancel()
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if other, dup := holders[l.Sub()]; dup {
					errs <- errors.New(l.Sub() + " leased to two seats: " + other + " and " + seat)
				}
				holders[l.Sub()] = seat
				seatsOf[l.Sub()]++
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
				mu.Lock()
				delete(holders, l.Sub())
				mu.Unlock()
				if err := l.Release(); err != nil {
					errs <- err
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for _, n := range seatsOf {
		total += n
	}
	assert.Equal(t, 30, total)
	assert.Empty(t, tempLeftovers(t, f.dir))
}

func TestLeaseCodexMovesTheWholeFile(t *testing.T) {
	dir := t.TempDir()
	m, err := New(WithCredsDir(dir), WithSubscriptions("work"), WithFormat(CodexCLI), WithClock(fixedClock))
	require.NoError(t, err)
	doc := codexDoc(fresh, "acct-1")
	writeFile(t, m.SlotPath("work"), doc)
	seat := seatDir(t)
	l, err := m.Lease(context.Background(), seat)
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(seat, "auth.json"))
	require.NoError(t, err)
	assert.Equal(t, doc, got)
	newer := codexDoc(fresh.Add(time.Hour), "acct-1")
	writeFile(t, filepath.Join(seat, "auth.json"), newer)
	require.NoError(t, l.Sync())
	slot, err := os.ReadFile(m.SlotPath("work"))
	require.NoError(t, err)
	assert.Equal(t, newer, slot)
	// Another account in the seat is never filed under this sub.
	writeFile(t, filepath.Join(seat, "auth.json"), codexDoc(fresh.Add(2*time.Hour), "acct-2"))
	require.ErrorIs(t, l.Sync(), ErrIdentityDrift)
	slot, err = os.ReadFile(m.SlotPath("work"))
	require.NoError(t, err)
	assert.Equal(t, newer, slot)
	// Released with another account in the seat: not written back, kept.
	require.NoError(t, l.Release())
	_, err = os.Lstat(filepath.Join(seat, "auth.json"))
	assert.True(t, os.IsNotExist(err))
	slot, err = os.ReadFile(m.SlotPath("work"))
	require.NoError(t, err)
	assert.Equal(t, newer, slot)
	backups, err := m.Backups()
	require.NoError(t, err)
	var kept bool
	for _, b := range backups {
		kept = kept || strings.Contains(b.Name, "auth.json.work.seat")
	}
	assert.True(t, kept, "the other account's login is kept as a backup")
}

func BenchmarkLeaseRelease(b *testing.B) {
	f := leaseFixture(b)
	seat := seatDir(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, err := f.m.Lease(ctx, seat)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(); err != nil {
			b.Fatal(err)
		}
	}
}

// A lease child: the test binary re-executed with these variables set takes
// a lease on a creds dir, reports it on stdout, optionally starts a child
// that inherits the lease's lock and writes a refreshed login into its
// seat, then waits for stdin to close and releases.
const (
	envLeaseChild = "CREDSLOTS_TEST_LEASE"
	envLeaseSeat  = "CREDSLOTS_TEST_LEASE_SEAT"
	envLeaseSub   = "CREDSLOTS_TEST_LEASE_SUB"
	envLeaseSpawn = "CREDSLOTS_TEST_LEASE_SPAWN"
	envLeaseWrite = "CREDSLOTS_TEST_LEASE_WRITE" // a refresh token: write a newer login into the seat
)

func leaseChildManager(dir string) (*Manager, error) {
	return New(WithCredsDir(dir), WithSubscriptions("bob", "alice", "erik"), WithClock(fixedClock))
}

func runLeaseChild() int {
	m, err := leaseChildManager(os.Getenv(envDir))
	if err != nil {
		fmt.Fprintln(os.Stderr, "lease child:", err)
		return 2
	}
	var opts []LeaseOption
	if sub := os.Getenv(envLeaseSub); sub != "" {
		opts = append(opts, LeaseSub(sub))
	}
	l, err := m.Lease(context.Background(), os.Getenv(envLeaseSeat), opts...)
	if err != nil {
		fmt.Printf("refused %v\n", errors.Is(err, ErrNoFreeSub))
		return 1
	}
	if os.Getenv(envLeaseSpawn) != "" {
		c := exec.Command("sleep", "60")
		c.ExtraFiles = []*os.File{l.File()}
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "lease child:", err)
			return 2
		}
		fmt.Printf("spawned %d\n", c.Process.Pid)
	}
	if rt := os.Getenv(envLeaseWrite); rt != "" {
		seatFile := filepath.Join(l.Seat(), DefaultLiveName)
		tmp := seatFile + ".tmp.cli"
		if err := os.WriteFile(tmp, claudeDoc(fresh.Add(48*time.Hour), rt), 0o600); err != nil {
			return 2
		}
		if err := os.Rename(tmp, seatFile); err != nil {
			return 2
		}
	}
	fmt.Printf("leased %s\n", l.Sub())
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := l.Release(); err != nil {
		fmt.Fprintln(os.Stderr, "lease child: release:", err)
		return 2
	}
	return 0
}

// envLeaseLoop makes a lease child run refresh cycles: lease with wait,
// present the seat's refresh token to a single-use "server" (a marker file
// created exclusively per token), store the next token in the seat as a
// CLI would, sometimes sync, release; it exits 3 on a token presented
// twice.
const envLeaseLoop = "CREDSLOTS_TEST_LEASE_LOOP"

func runLeaseLoop() int {
	m, err := New(WithCredsDir(os.Getenv(envDir)), WithSubscriptions("bob", "alice", "erik"),
		WithClock(fixedClock), WithCLILocks(false), WithLockTimeout(30*time.Second), WithBackupGenerations(1<<20))
	if err != nil {
		return 2
	}
	used := os.Getenv(envLeaseLoop)
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		l, err := m.Lease(ctx, filepath.Join(m.seatsDir(), fmt.Sprintf("%d-%d", os.Getpid(), i)), LeaseWait())
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "loop child:", err)
			return 2
		}
		seatFile := filepath.Join(l.Seat(), DefaultLiveName)
		data, err := os.ReadFile(seatFile)
		if err != nil {
			return 2
		}
		var n int
		if _, err := fmt.Sscanf(refreshTokenOf(data), "rt-"+l.Sub()+"-%d", &n); err != nil {
			fmt.Fprintln(os.Stderr, "loop child: unexpected token in seat")
			return 2
		}
		// The CLI's refresh: the new login lands, then the old token is spent.
		next := claudeDoc(fresh.Add(time.Duration(n+1)*time.Minute), fmt.Sprintf("rt-%s-%d", l.Sub(), n+1))
		if err := os.WriteFile(seatFile+".tmp.cli", next, 0o600); err != nil {
			return 2
		}
		if err := os.Rename(seatFile+".tmp.cli", seatFile); err != nil {
			return 2
		}
		mark, err := os.OpenFile(filepath.Join(used, fmt.Sprintf("%s-%d", l.Sub(), n)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			fmt.Fprintf(os.Stderr, "loop child: %s's refresh token %d presented twice\n", l.Sub(), n)
			return 3
		}
		_ = mark.Close()
		if i%2 == 0 {
			if err := l.Sync(); err != nil {
				return 2
			}
		}
		if err := l.Release(); err != nil {
			fmt.Fprintln(os.Stderr, "loop child: release:", err)
			return 2
		}
	}
}

func TestLeaseWritesBackARefreshWithAShorterLife(t *testing.T) {
	// A token endpoint may grant a shorter life than the handed login had
	// left: the seat's refresh of it is still the newer login, since its
	// refresh token replaced the slot's, which is used up.
	f := leaseFixture(t)
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	cliRefresh(t, seat, testNow.Add(4*time.Minute), "rt-bob-short-1")
	require.NoError(t, l.Sync())
	slot, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, "rt-bob-short-1", refreshTokenOf(slot), "written back although it expires sooner")

	cliRefresh(t, seat, testNow.Add(3*time.Minute), "rt-bob-short-2")
	require.NoError(t, l.Release(), "the release syncs the next rotation too")
	slot, err = os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, "rt-bob-short-2", refreshTokenOf(slot))

	// A copy put back in the seat that is not a rotation of the handed
	// login (the slot moved on) is judged by its expiry as before.
	l, err = f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	if err == nil {
		writeFile(t, filepath.Join(seat, DefaultLiveName), claudeDoc(testNow.Add(2*time.Minute), "rt-bob-short-1")) // seen before
		require.NoError(t, l.Release())
		slot, err = os.ReadFile(f.slot("bob"))
		require.NoError(t, err)
		assert.Equal(t, "rt-bob-short-2", refreshTokenOf(slot), "an older copy is not a rotation")
	}
}

// TestLeaseSyncOfAnUnchangedSeatTakesNoLock: a seat that holds the slot's
// own login is looked at without its CLI's locks, so following it never
// stands in the way of that CLI's refresh: a refresh lock held in the seat
// neither delays nor fails the sync. A newer login is still written back
// under the locks, once the refresh that wrote it let them go.
func TestLeaseSyncOfAnUnchangedSeatTakesNoLock(t *testing.T) {
	f := leaseFixture(t, WithLockTimeout(200*time.Millisecond))
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	defer l.Release()
	refreshLock := filepath.Join(seat, claudeRefreshLock)
	require.NoError(t, os.Mkdir(refreshLock, 0o755)) // the CLI's refresh, under way

	start := time.Now()
	require.NoError(t, l.Sync(), "nothing new: no lock waited for")
	assert.Less(t, time.Since(start), 100*time.Millisecond)
	assert.DirExists(t, refreshLock, "the CLI's lock is left alone")

	live := filepath.Join(seat, DefaultLiveName)
	kept, err := os.ReadFile(live)
	require.NoError(t, err)
	require.NoError(t, os.Remove(live)) // logged out
	start = time.Now()
	require.NoError(t, l.Sync(), "logged out: nothing to write back, no lock waited for")
	assert.Less(t, time.Since(start), 100*time.Millisecond)
	writeFile(t, live, kept)

	cliRefresh(t, seat, fresh.Add(20*time.Hour), "rt-bob-1")
	assert.ErrorIs(t, l.Sync(), ErrLockTimeout, "a newer login is read under the locks")
	require.NoError(t, os.Remove(refreshLock))
	require.NoError(t, l.Sync())
	slot, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, "rt-bob-1", refreshTokenOf(slot))
}

// A 401 seen in a leased seat after its CLI refreshed: the login the
// server rejected is the seat's, not the slot's older one. The release
// writes it back, and the mark stands on it (a capture of it keeps it), for
// Claude Code as for Codex CLI.
func TestAMarkWhileLeasedStandsOnTheSeatsLogin(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format Format
		doc    func(exp time.Time, rt string) []byte
		file   string
	}{
		{"claude", ClaudeCode, func(exp time.Time, rt string) []byte { return claudeDoc(exp, rt) }, ".credentials.json"},
		{"codex", CodexCLI, func(exp time.Time, rt string) []byte { return codexLogin(exp, "acct-bob", rt) }, "auth.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, WithFormat(tc.format))
			writeFile(t, f.slot("bob"), tc.doc(fresh, "rt-bob-0"))
			_, err := f.m.CaptureSlotFingerprint("bob")
			require.NoError(t, err)
			seat := seatDir(t)
			l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
			require.NoError(t, err)
			p := filepath.Join(seat, tc.file)
			require.NoError(t, os.WriteFile(p+".tmp", tc.doc(fresh.Add(time.Hour), "rt-bob-seat-1"), 0o600))
			require.NoError(t, os.Rename(p+".tmp", p))
			require.NoError(t, f.m.MarkInvalid("bob", "401 seen in the seat"))
			require.NoError(t, l.Release())
			_, err = f.m.SwitchTo("bob", "after")
			require.ErrorIs(t, err, ErrInvalidated, "the written-back login is the rejected one")
			_, err = f.m.CaptureSlotFingerprint("bob")
			require.NoError(t, err)
			_, err = f.m.SwitchTo("bob", "after")
			require.ErrorIs(t, err, ErrInvalidated, "capturing the rejected login keeps the mark")
		})
	}
}

// A 401 seen in a leased seat whose CLI refreshed: the token in use is the
// seat's, valid, though the slot's older one has expired: the sub is
// marked invalid, not told that a refresh is due.
func TestA401InASeatWeighsTheSeatsExpiry(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob-0")
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	defer func() { _ = l.Release() }()
	writeSlot(t, f.slot("bob"), stale, "rt-bob-0") // the slot's access token has expired meanwhile
	p := filepath.Join(seat, ".credentials.json")
	require.NoError(t, os.WriteFile(p+".tmp", claudeDoc(fresh.Add(time.Hour), "rt-bob-seat-1"), 0o600))
	require.NoError(t, os.Rename(p+".tmp", p))
	obs, err := f.m.Observe("bob", http.StatusUnauthorized, nil)
	require.NoError(t, err)
	assert.Equal(t, OutcomeInvalidated, obs.Outcome, obs.Reason)
}

// A dead lease's seat that cannot be read (here its file is a directory)
// keeps its sub out of every lease, since its login may be there, but no
// longer fails the leases of the other subs.
func TestAnUnreadableDeadSeatKeepsOnlyItsSubOut(t *testing.T) {
	f := leaseFixture(t)
	dead := seatDir(t)
	l, err := f.m.Lease(context.Background(), dead, LeaseSub("bob"))
	require.NoError(t, err)
	require.NoError(t, l.File().Close()) // the lessee died
	seatFile := filepath.Join(dead, DefaultLiveName)
	require.NoError(t, os.Remove(seatFile))
	require.NoError(t, os.Mkdir(seatFile, 0o700))
	writeFile(t, filepath.Join(seatFile, "x"), []byte("{}")) // holds something: looks like a login

	l2, err := f.m.Lease(context.Background(), seatDir(t))
	require.NoError(t, err, "another sub is leased")
	assert.NotEqual(t, "bob", l2.Sub())
	require.NoError(t, l2.Release())
	_, err = f.m.Lease(context.Background(), seatDir(t), LeaseSub("bob"))
	require.Error(t, err, "bob's login may be in the seat that cannot be read")
	assert.Contains(t, err.Error(), dead)
	_, err = f.m.Lease(context.Background(), dead, LeaseSub("alice"))
	require.Error(t, err, "nor is that seat handed out")
}

// observe401Around observes a 401 for a sub leased to a seat whose login
// is rt-seat-1, with between run once right after Observe's read of the
// seat, and returns the sub's state afterwards.
func observe401Around(t *testing.T, between func(m *Manager, sub, seat string)) subState {
	t.Helper()
	m, ffs, subs := countingFixture(t, 3)
	sub := subs[0]
	seat := seatDir(t)
	l, err := m.Lease(context.Background(), seat, LeaseSub(sub))
	require.NoError(t, err)
	defer func() { _ = l.Release() }()
	cliRefresh(t, seat, fresh.Add(time.Hour), "rt-seat-1")
	seatFile := filepath.Join(seat, DefaultLiveName)
	var once sync.Once
	read := false
	ffs.before = func(op, name string) {
		if read {
			once.Do(func() { between(m, sub, seat) })
		}
		if op == "read" && name == seatFile {
			read = true
		}
	}
	obs, err := m.Observe(sub, http.StatusUnauthorized, nil)
	ffs.before = nil
	require.NoError(t, err)
	require.Equal(t, OutcomeInvalidated, obs.Outcome, obs.Reason)
	state, err := m.readState()
	require.NoError(t, err)
	return state[sub]
}

// The CLI refreshes in the seat between Observe's weighing of a 401 and
// its mark: the mark stands on the login the server rejected, read once,
// not on the refresh that came after it.
func TestA401MarksTheSeatsLoginItWeighed(t *testing.T) {
	st := observe401Around(t, func(_ *Manager, _, seat string) {
		cliRefresh(t, seat, fresh.Add(2*time.Hour), "rt-seat-2")
	})
	assert.Equal(t, hashBytes([]byte("rt-seat-1")), st.InvalidFP, "the login the server rejected is the one marked")
}

// A lease's write-back lands in the slot between Observe's weighing of a
// 401 and its mark: that newer login, which the server never saw, is not
// marked along with the rejected one.
func TestA401DoesNotMarkALoginWrittenBackSince(t *testing.T) {
	st := observe401Around(t, func(m *Manager, sub, _ string) {
		writeSlot(t, m.SlotPath(sub), fresh.Add(2*time.Hour), "rt-seat-2")
	})
	assert.Equal(t, hashBytes([]byte("rt-seat-1")), st.InvalidFP)
	assert.NotContains(t, st.InvalidAlso, hashBytes([]byte("rt-seat-2")), "the written-back login is not marked")
}
