package credslots

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// changes collects what the WithOnChange hook received.
type changes struct {
	mu  sync.Mutex
	got []Change
}

func (c *changes) hook(ch Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, ch)
}

func (c *changes) ops() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, ch := range c.got {
		out = append(out, ch.Op+" "+ch.Sub+" from "+ch.From)
	}
	return out
}

func TestSwitchResultSaysWhereFrom(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), testNow.Add(8*time.Hour), "rt-bob")
	writeSlot(t, f.slot("alice"), testNow.Add(9*time.Hour), "rt-alice")
	writeSlot(t, f.slot("erik"), testNow.Add(-time.Hour), "rt-erik")

	res, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	assert.Equal(t, "bob", res.Sub)
	assert.Equal(t, "", res.From, "the live path was missing")

	res, err = f.m.SwitchNext("quota")
	require.NoError(t, err)
	assert.Equal(t, "alice", res.Sub, "SwitchNext says where it went")
	assert.Equal(t, "bob", res.From)

	res, err = f.m.SwitchTo("erik", "x")
	require.ErrorIs(t, err, ErrNotFresh)
	assert.Equal(t, "erik", res.Sub, "a refusal names its target")

	// A refresh, healed: the live file was alice's refreshed copy.
	time.Sleep(20 * time.Millisecond)
	f.refresh(t, claudeDoc(testNow.Add(10*time.Hour), "rt-alice-2"))
	res, err = f.m.HealDrift()
	require.NoError(t, err)
	assert.Equal(t, "alice", res.Sub)
	assert.Equal(t, "alice", res.From)

	// No candidate left: From is the active sub.
	require.NoError(t, f.m.Rest("bob", testNow.Add(time.Hour), "429"))
	res, err = f.m.SwitchNext("quota")
	require.ErrorIs(t, err, ErrNoCandidate)
	assert.Equal(t, "", res.Sub)
	assert.Equal(t, "alice", res.From)
}

func TestWithOnChangeRunsAfterTheLocks(t *testing.T) {
	var c changes
	var f *fixture
	var lockFree []bool
	f = newFixture(t, WithOnChange(func(ch Change) {
		// The package's lock is free: taking it does not wait.
		unlock, ok, err := disk.OS{}.TryLock(f.m.lockPath)
		if err == nil && ok {
			_ = unlock()
		}
		lockFree = append(lockFree, err == nil && ok)
		c.hook(ch)
	}))
	writeSlot(t, f.slot("bob"), testNow.Add(8*time.Hour), "rt-bob")
	writeSlot(t, f.slot("alice"), testNow.Add(9*time.Hour), "rt-alice")

	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("alice", "quota")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("erik", "refused")
	require.Error(t, err)
	require.NoError(t, f.m.Rest("bob", testNow.Add(time.Hour), "429"))
	require.NoError(t, f.m.MarkInvalid("bob", "401"))
	_, err = f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond)
	f.refresh(t, claudeDoc(testNow.Add(10*time.Hour), "rt-alice-2"))
	_, err = f.m.HealDriftTo("alice")
	require.NoError(t, err)
	require.NoError(t, f.m.Remove("bob", "retired"))

	assert.Equal(t, []string{
		"switch bob from ", "switch alice from bob", "rest bob from ", "invalid bob from ",
		"capture bob from ", "heal alice from alice", "remove bob from ",
	}, c.ops(), "every change, none refused")
	for i, free := range lockFree {
		assert.True(t, free, "change %d: the hook ran with the lock free", i)
	}
	assert.Equal(t, "quota", c.got[1].Reason)
	assert.Equal(t, testNow, c.got[1].Time)
	assert.Len(t, f.hook.get(), 3, "WithOnSwitch keeps working: two switches and a heal")
}

func TestWithOnChangeMayCallBack(t *testing.T) {
	var f *fixture
	done := make(chan struct{})
	f = newFixture(t, WithOnChange(func(ch Change) {
		if ch.Op == opSwitch && ch.Sub == "bob" {
			// Calling a mutating method from the hook does not deadlock.
			_, err := f.m.SwitchTo("alice", "from the hook")
			assert.NoError(t, err)
			close(done)
		}
	}), WithLockTimeout(time.Second))
	writeSlot(t, f.slot("bob"), testNow.Add(8*time.Hour), "rt-bob")
	writeSlot(t, f.slot("alice"), testNow.Add(9*time.Hour), "rt-alice")
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	<-done
	assert.Equal(t, "alice", mustActive(t, f.m))
}

func mustActive(t *testing.T, m *Manager) string {
	t.Helper()
	a, ok := m.ActiveSubscription()
	require.True(t, ok)
	return a
}

// TestContextCancelledChangesNothing: a done context is refused before any
// file is touched, and a wait for a held lock ends with the context.
func TestContextCancelledChangesNothing(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), testNow.Add(8*time.Hour), "rt-bob")
	writeSlot(t, f.slot("alice"), testNow.Add(9*time.Hour), "rt-alice")
	f.link(t, "bob")
	before := snapshot(t, f.dir)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() (SwitchResult, error){
		"SwitchToContext":    func() (SwitchResult, error) { return f.m.SwitchToContext(ctx, "alice", "x") },
		"SwitchNextContext":  func() (SwitchResult, error) { return f.m.SwitchNextContext(ctx, "x") },
		"HealDriftContext":   func() (SwitchResult, error) { return f.m.HealDriftContext(ctx) },
		"HealDriftToContext": func() (SwitchResult, error) { return f.m.HealDriftToContext(ctx, "bob") },
		"AdoptContext":       func() (SwitchResult, error) { return f.m.AdoptContext(ctx, "erik") },
	}
	for name, call := range calls {
		res, err := call()
		assert.ErrorIs(t, err, context.Canceled, name)
		assert.False(t, res.OK, name)
		assert.Equal(t, before, snapshot(t, f.dir), name+" changed nothing")
	}

	// A lock held by another change: the wait ends when ctx does.
	f2 := newFixture(t, WithLockTimeout(time.Minute), WithCLILocks(false))
	writeSlot(t, f2.slot("bob"), testNow.Add(8*time.Hour), "rt-bob")
	writeSlot(t, f2.slot("alice"), testNow.Add(9*time.Hour), "rt-alice")
	f2.link(t, "bob")
	mu, err := f2.m.beginMutation()
	require.NoError(t, err)
	defer mu.end()
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = f2.m.SwitchToContext(ctx, "alice", "x")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 10*time.Second, "did not wait for the lock timeout")
	assert.Equal(t, ".credentials.json.bob", f2.readlink(t))
}

// TestContextVariantsOfEveryChange: each change that waits for a lock has
// a Context variant; a done context is refused before any file is touched,
// and a wait for the package's lock, held by another change, ends with the
// context, not the lock timeout.
func TestContextVariantsOfEveryChange(t *testing.T) {
	setup := func(t *testing.T, opts ...Option) (*fixture, string) {
		f := newFixture(t, opts...)
		writeSlot(t, f.slot("bob"), testNow.Add(8*time.Hour), "rt-bob")
		writeSlot(t, f.slot("alice"), testNow.Add(9*time.Hour), "rt-alice")
		writeSlot(t, f.slot("erik"), testNow.Add(9*time.Hour), "rt-erik")
		f.link(t, "bob")
		_, err := f.m.SwitchTo("alice", "x")
		require.NoError(t, err)
		require.NoError(t, f.m.Remove("erik", "retired"))
		backups, err := f.m.Backups()
		require.NoError(t, err)
		require.NotEmpty(t, backups)
		// A flip by hand that RecordFlip would record.
		f.link(t, "bob")
		return f, backups[0].Name
	}
	limited := http.Header{"Retry-After": []string{"600"}}
	calls := func(m *Manager, ctx context.Context, backup string) map[string]func() error {
		return map[string]func() error{
			"RestoreContext": func() error { return m.RestoreContext(ctx, backup, "erik") },
			"RemoveContext":  func() error { return m.RemoveContext(ctx, "alice", "x") },
			"RestContext":    func() error { return m.RestContext(ctx, "alice", testNow.Add(time.Hour), "x") },
			"MarkInvalidContext": func() error {
				return m.MarkInvalidContext(ctx, "alice", "x")
			},
			"CaptureSlotFingerprintContext": func() error {
				_, err := m.CaptureSlotFingerprintContext(ctx, "alice")
				return err
			},
			"RecordFlipContext": func() error {
				_, ok, err := m.RecordFlipContext(ctx)
				assert.False(t, ok)
				return err
			},
			"ObserveContext": func() error {
				obs, err := m.ObserveContext(ctx, "alice", http.StatusTooManyRequests, limited)
				assert.Equal(t, OutcomeNothing, obs.Outcome)
				return err
			},
		}
	}

	f, backup := setup(t)
	before := snapshot(t, f.dir)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for name, call := range calls(f.m, done, backup) {
		assert.ErrorIs(t, call(), context.Canceled, name)
		assert.Equal(t, before, snapshot(t, f.dir), name+" changed nothing")
	}

	f2, backup := setup(t, WithLockTimeout(time.Minute), WithCLILocks(false))
	mu, err := f2.m.beginMutation()
	require.NoError(t, err)
	defer mu.end()
	before = snapshot(t, f2.dir)
	for name := range calls(f2.m, done, backup) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		start := time.Now()
		err := calls(f2.m, ctx, backup)[name]()
		cancel()
		assert.ErrorIs(t, err, context.DeadlineExceeded, name)
		assert.Less(t, time.Since(start), 10*time.Second, name+" did not wait for the lock timeout")
		assert.Equal(t, before, snapshot(t, f2.dir), name+" changed nothing")
	}
}

func TestRemoveKeepsTheSlotAsABackup(t *testing.T) {
	f := newFixture(t)
	bob := writeSlot(t, f.slot("bob"), testNow.Add(8*time.Hour), "rt-bob")
	writeSlot(t, f.slot("alice"), testNow.Add(9*time.Hour), "rt-alice")
	f.link(t, "alice")
	_, err := f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)

	err = f.m.Remove("alice", "x")
	require.ErrorIs(t, err, ErrActiveSub, "the active slot stays")
	require.ErrorIs(t, f.m.Remove("erik", "x"), ErrSlotMissing)
	require.ErrorIs(t, f.m.Remove("zed", "x"), ErrUnknownSubscription)

	require.NoError(t, f.m.Remove("bob", "retired"))
	assert.NoFileExists(t, f.slot("bob"))
	assert.NoFileExists(t, f.m.FingerprintPath("bob"))
	kept, err := os.ReadFile(f.slot("bob") + prevSuffix)
	require.NoError(t, err)
	assert.Equal(t, bob, kept, "the login is kept as the slot's backup")
	subs, err := DiscoverSubscriptions(f.dir, DefaultSlotTemplate)
	require.NoError(t, err)
	assert.Equal(t, []string{"alice"}, subs, "out of the rotation")

	entries, err := f.m.Journal()
	require.NoError(t, err)
	last := entries[len(entries)-1]
	assert.Equal(t, "remove", last.Op)
	assert.Equal(t, phaseDone, last.Phase)

	// Restore brings it back.
	require.NoError(t, f.m.Restore(".credentials.json.bob.prev", "bob"))
	got, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, bob, got)
	assert.False(t, errors.Is(err, ErrSlotMissing))
}

// The active sub's refusal to be removed names what to do with the live
// regular file: heal a refresh of its login, add a login of a new identity
// (Codex CLI: an account_id no slot holds), which no heal takes.
func TestRemoveOfTheActiveSubAdvisesHealOrAdd(t *testing.T) {
	for _, c := range []struct {
		name, account, want string
	}{{"refresh", "acct-alice", "credslots heal alice"}, {"new account", "acct-new", "credslots add NAME"}} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, WithFormat(CodexCLI))
			writeFile(t, f.slot("alice"), codexDoc(testNow.Add(9*time.Hour), "acct-alice"))
			writeFile(t, f.slot("bob"), codexDoc(testNow.Add(8*time.Hour), "acct-bob"))
			for _, sub := range []string{"alice", "bob"} {
				_, err := f.m.CaptureSlotFingerprint(sub)
				require.NoError(t, err)
			}
			_, err := f.m.SwitchTo("alice", "r")
			require.NoError(t, err)
			// The CLI replaced the link with a regular file.
			live := f.m.LivePath()
			require.NoError(t, os.Remove(live))
			writeFile(t, live, codexDoc(testNow.Add(10*time.Hour), c.account))
			err = f.m.Remove("alice", "x")
			require.ErrorIs(t, err, ErrActiveSub)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}
