package credslots

// Tests for the safety half of SPEC section 21: a person's own steps (a
// /login, a flip by hand, a manual heal or restore) never file one
// account's login under another and never lose a mark.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const daveAccount = `{"accountUuid":"d-4","emailAddress":"dave@example.test","organizationUuid":"o-4"}`

// accountsFixture is homeFixture with alice's and bob's accounts
// remembered, bob switched to by the Manager (so .claude.json shows bob).
func accountsFixture(t *testing.T) (*fixture, string) {
	t.Helper()
	f, claudeJSONPath := homeFixture(t)
	learnAccounts(t, f, claudeJSONPath)
	_, err := f.m.SwitchTo("alice", "start")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	got, err := os.ReadFile(claudeJSONPath)
	require.NoError(t, err)
	require.JSONEq(t, bobAccount, string(accountIn(got)))
	return f, claudeJSONPath
}

// later is a live-file mtime after every change the fixture made.
func later() time.Time { return time.Now().Add(time.Hour) }

func TestANewLoginIsNotHealedIntoThePreviousSub(t *testing.T) {
	for _, order := range []string{".claude.json first", ".credentials.json first"} {
		t.Run(order, func(t *testing.T) {
			f, claudeJSONPath := accountsFixture(t)
			bobBefore, err := os.ReadFile(f.slot("bob"))
			require.NoError(t, err)
			login := claudeDoc(fresh.Add(time.Hour), "rt-dave")
			// A /login to dave writes both files; what the heal sees is
			// what they hold once both settled.
			if order == ".claude.json first" {
				writeFile(t, claudeJSONPath, claudeJSON(daveAccount))
				f.refreshAt(t, login, later())
			} else {
				f.refreshAt(t, login, later())
				writeFile(t, claudeJSONPath, claudeJSON(daveAccount))
			}

			for name, heal := range map[string]func() (SwitchResult, error){
				"HealDrift":   func() (SwitchResult, error) { return f.m.HealDrift() },
				"HealDriftTo": func() (SwitchResult, error) { return f.m.HealDriftTo("bob") },
			} {
				res, err := heal()
				require.ErrorIs(t, err, ErrNewLogin, name)
				require.ErrorIs(t, err, ErrIdentityDrift, name)
				assert.Contains(t, res.Reason, "dave@example.test", name)
				assert.Contains(t, res.Reason, "credslots add NAME", name)
			}
			got, err := os.ReadFile(f.slot("bob"))
			require.NoError(t, err)
			assert.Equal(t, bobBefore, got, "bob's slot keeps bob's login")
			live, err := os.ReadFile(f.m.LivePath())
			require.NoError(t, err)
			assert.Equal(t, login, live, "the new login stays live")

			// Filed under a sub of its own, it is dave's.
			_, err = f.m.Adopt("erik")
			require.NoError(t, err)
			got, err = os.ReadFile(f.slot("erik"))
			require.NoError(t, err)
			assert.Equal(t, login, got)
			_, acct, err := f.m.storedSidecar("erik")
			require.NoError(t, err)
			assert.JSONEq(t, daveAccount, string(acct), "erik remembers dave's account")
		})
	}
}

func TestARefreshOfTheSameAccountIsStillHealed(t *testing.T) {
	f, _ := accountsFixture(t)
	refreshed := claudeDoc(fresh.Add(time.Hour), "rt-bob-2")
	f.refreshAt(t, refreshed, later())
	_, err := f.m.HealDrift()
	require.NoError(t, err)
	got, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, refreshed, got)
}

// .claude.json without an account, written a moment ago, while the journal
// recorded one: a /login between dropping the old account and writing the
// new one. The heal defers; once that write is older than loginSettle (or
// its time is ahead of the clock), a missing account is no evidence, as
// before.
func TestAHealDefersWhileALoginDropsTheAccount(t *testing.T) {
	for _, c := range []struct {
		name    string
		mtime   time.Duration // .claude.json's mtime, from now; 0 for just written
		settles bool
	}{
		{"just written", 0, false},
		{"written before the settle time", -2 * loginSettle, true},
		{"a time ahead of the clock", time.Hour, true}, // a server's clock, or one stepped back
	} {
		t.Run(c.name, func(t *testing.T) {
			f, claudeJSONPath := accountsFixture(t)
			bobBefore := mustRead(t, f.slot("bob"))
			writeFile(t, claudeJSONPath, []byte(`{"numStartups":3}`))
			if c.mtime != 0 {
				at := time.Now().Add(c.mtime)
				require.NoError(t, os.Chtimes(claudeJSONPath, at, at))
			}
			f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"), later())
			res, err := f.m.HealDrift()
			if !c.settles {
				require.ErrorIs(t, err, ErrDeferred)
				assert.Contains(t, err.Error(), "a login may be under way")
				assert.NotContains(t, err.Error(), "locks", "no lock is involved")
				assert.Equal(t, bobBefore, mustRead(t, f.slot("bob")))
				return
			}
			require.NoError(t, err, "no account is no evidence")
			assert.Equal(t, "bob", res.Sub)
		})
	}
}

func TestALoginShownAsAnotherSubsAccountIsThatSubs(t *testing.T) {
	f, claudeJSONPath := accountsFixture(t)
	writeFile(t, claudeJSONPath, claudeJSON(aliceAccount)) // a /login as alice
	f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-alice-new"), later())
	res, err := f.m.HealDrift()
	require.ErrorIs(t, err, ErrIdentityDrift)
	assert.NotErrorIs(t, err, ErrNewLogin)
	assert.Contains(t, res.Reason, "credslots heal alice")
	_, err = f.m.Adopt("erik")
	require.ErrorIs(t, err, ErrIdentityDrift, "adopting alice's login under another name is refused")

	// Named, with .claude.json showing alice's own account, it heals.
	_, err = f.m.HealDriftTo("alice")
	require.NoError(t, err)
	got, err := os.ReadFile(f.slot("alice"))
	require.NoError(t, err)
	assert.Equal(t, "rt-alice-new", refreshTokenOf(got))
}

func TestAHandFlipThenARefreshHealsIntoTheFlippedSub(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)

	sub, ok, err := f.m.RecordFlip()
	require.NoError(t, err)
	assert.False(t, ok, "the journal already says bob")
	assert.Empty(t, sub)

	f.link(t, "alice") // ln -sfn .credentials.json.alice .credentials.json
	sub, ok, err = f.m.RecordFlip()
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "alice", sub)
	active, ok := f.m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "alice", active)
	_, ok, err = f.m.RecordFlip()
	require.NoError(t, err)
	assert.False(t, ok, "recorded once")

	f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-alice-2"), later())
	_, err = f.m.HealDrift()
	require.NoError(t, err)
	got, err := os.ReadFile(f.slot("alice"))
	require.NoError(t, err)
	assert.Equal(t, "rt-alice-2", refreshTokenOf(got), "alice's rotated token is in alice's slot")
	got, err = os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, "rt-bob", refreshTokenOf(got), "bob's slot is untouched")
}

func TestAManualHealIntoAnotherSubThanTheLiveOneIsRefused(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	aliceBefore := writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"), later())

	res, err := f.m.HealDriftTo("alice")
	require.ErrorIs(t, err, ErrIdentityDrift)
	assert.Contains(t, res.Reason, "credslots heal bob")
	got, err := os.ReadFile(f.slot("alice"))
	require.NoError(t, err)
	assert.Equal(t, aliceBefore, got)

	_, err = f.m.HealDriftTo("alice", Force())
	require.NoError(t, err, "forced, the operator's word stands")
}

func TestRestoreRefusesABackupThatBelongedToAnotherSub(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	for i, rt := range []string{"rt-bob-2", "rt-bob-3"} {
		f.refreshAt(t, claudeDoc(fresh.Add(time.Duration(i+1)*time.Hour), rt), later().Add(time.Duration(i)*time.Minute))
		_, err = f.m.HealDrift()
		require.NoError(t, err)
	}
	backups, err := f.m.Backups()
	require.NoError(t, err)
	var older []Backup
	for _, b := range backups {
		if b.Sub == "bob" {
			older = append(older, b)
		}
	}
	require.Len(t, older, 2, "bob's rt-bob and rt-bob-2, neither bob's current fingerprint")

	for _, b := range older {
		err := f.m.Restore(b.Name, "alice")
		require.ErrorIs(t, err, ErrIdentityDrift, b.Name)
		assert.Contains(t, err.Error(), "credslots restore "+b.Name+" bob")
	}
	got, err := os.ReadFile(f.slot("alice"))
	require.NoError(t, err)
	assert.Equal(t, "rt-alice", refreshTokenOf(got))

	require.NoError(t, f.m.Restore(older[0].Name, "bob"), "into its own sub it goes")
	require.NoError(t, f.m.Restore(older[1].Name, "alice", Force()), "forced, it goes anywhere")
}

func TestAForcedSwitchSaysWhereTheOnlyCopyWent(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"), later())

	res, err := f.m.SwitchTo("alice", "rotate", Force())
	require.NoError(t, err)
	assert.Contains(t, res.Reason, "switched to alice")
	assert.Contains(t, res.Reason, ".credentials.json.prev")

	backups, err := f.m.Backups()
	require.NoError(t, err)
	found := false
	for _, b := range backups {
		if b.Name == ".credentials.json.prev" {
			found = true
			assert.Equal(t, "bob", b.Sub, "the journal knows whose login it is")
		}
	}
	assert.True(t, found)
	err = f.m.Restore(".credentials.json.prev", "alice")
	require.ErrorIs(t, err, ErrIdentityDrift, "bob's drifted login never goes into alice's slot")
	require.NoError(t, f.m.Restore(".credentials.json.prev", "bob"))
}

func TestAnInvalidMarkSticksToTheRejectedLogin(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	// The CLI refreshed; the server then rejects exactly that live login.
	f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"), later())
	require.NoError(t, f.m.MarkInvalid("bob", "401"))
	state, err := f.m.readState()
	require.NoError(t, err)
	assert.Equal(t, hashBytes([]byte("rt-bob-2")), state["bob"].InvalidFP, "the live login is the one marked")

	_, err = f.m.HealDrift()
	require.NoError(t, err, "the heal moves the rejected login into bob's slot")
	_, err = f.m.SwitchTo("alice", "away")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("bob", "back")
	require.ErrorIs(t, err, ErrInvalidated, "healing the same login keeps the mark")

	// A routine refresh of the same account keeps it too.
	_, err = f.m.SwitchTo("bob", "back", Force())
	require.NoError(t, err)
	f.refreshAt(t, claudeDoc(fresh.Add(2*time.Hour), "rt-bob-3"), later().Add(time.Minute))
	_, err = f.m.HealDrift()
	require.NoError(t, err)
	_, err = f.m.SwitchTo("alice", "away")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("bob", "back")
	require.ErrorIs(t, err, ErrInvalidated, "a refresh heal keeps the mark")

	// So does a restore of an older login of bob's.
	backups, err := f.m.Backups()
	require.NoError(t, err)
	for _, b := range backups {
		if b.Sub == "bob" {
			require.NoError(t, f.m.Restore(b.Name, "bob"))
			break
		}
	}
	_, err = f.m.SwitchTo("bob", "back")
	require.ErrorIs(t, err, ErrInvalidated, "a restore of bob's own older login keeps the mark")

	// Only a new login clears it.
	f.refreshAt(t, claudeDoc(fresh.Add(3*time.Hour), "rt-bob-new-login"), later().Add(2*time.Minute))
	_, err = f.m.Adopt("bob", Force())
	require.NoError(t, err)
	_, err = f.m.SwitchTo("alice", "away")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("bob", "back")
	require.NoError(t, err, "a new login clears the mark")
}

func TestAHealNeverStepsBackwards(t *testing.T) {
	f := newFixture(t)
	newer := writeSlot(t, f.slot("bob"), fresh.Add(2*time.Hour), "rt-bob-3")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	// An older, still fresh copy of bob's login reappears (a sync tool, cp).
	f.refreshAt(t, claudeDoc(fresh, "rt-bob-2"), later())

	res, err := f.m.HealDrift()
	require.ErrorIs(t, err, ErrOlderLogin)
	assert.Contains(t, res.Reason, "credslots switch bob --force")
	got, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, newer, got, "the newer login stays")

	_, err = f.m.HealDrift(Force())
	require.NoError(t, err, "forced, the operator's word stands")
}

func TestAHealKeepsTheAccountTheSlotRemembers(t *testing.T) {
	f, claudeJSONPath := accountsFixture(t)
	for i, rt := range []string{"rt-bob-2", "rt-bob-3"} {
		f.refreshAt(t, claudeDoc(fresh.Add(time.Duration(i+1)*time.Hour), rt), later().Add(time.Duration(i)*time.Minute))
		_, err := f.m.HealDrift()
		require.NoError(t, err)
		_, acct, err := f.m.storedSidecar("bob")
		require.NoError(t, err)
		assert.JSONEq(t, bobAccount, string(acct), "after heal %d bob still remembers his account", i+1)
	}
	_, err := f.m.SwitchTo("alice", "away")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("bob", "back")
	require.NoError(t, err)
	got, err := os.ReadFile(claudeJSONPath)
	require.NoError(t, err)
	assert.JSONEq(t, bobAccount, string(accountIn(got)), "the switch still splices bob's account")
}

// interruptedHeal is bob live, refreshed (rt-bob-2), and what a kill
// between a heal's slot write and its swap leaves: the intent, the slot
// holding the live bytes, the live file, the old sidecar. It returns the
// refreshed login.
func interruptedHeal(t *testing.T, f *fixture) []byte {
	t.Helper()
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	refreshed := claudeDoc(fresh.Add(time.Hour), "rt-bob-2")
	f.refreshAt(t, refreshed, later())
	appendJournal(t, f.m, JournalEntry{Time: testNow, Op: opHeal, Phase: phaseIntent, ID: "cut", Sub: "bob",
		Reason: healHookReason, Fingerprint: hashBytes([]byte("rt-bob-2"))})
	writeFile(t, f.slot("bob"), refreshed)
	return refreshed
}

func TestAnInterruptedHealIsFinishedNotFlagged(t *testing.T) {
	f := newFixture(t)
	interruptedHeal(t, f)

	info, err := f.m.DetectSlotIdentityDrift("bob")
	require.NoError(t, err)
	assert.False(t, info.Drift, info.Reason)
	assert.Equal(t, reasonInterrupted, info.Reason)
	st, err := f.m.Status()
	require.NoError(t, err)
	assert.NotContains(t, st.Problems, "identity drift", "no false alarm")
	for _, p := range st.Problems {
		assert.NotContains(t, p, "identity")
	}

	// The next heal completes it: the link is back, the fingerprint
	// captured, the journal says bob.
	_, err = f.m.HealDrift()
	require.ErrorIs(t, err, ErrNoDrift)
	assert.Equal(t, ".credentials.json.bob", f.readlink(t))
	stored, ok := f.m.ReadStoredFingerprint("bob")
	assert.True(t, ok)
	assert.Equal(t, hashBytes([]byte("rt-bob-2")), stored)
	active, ok := f.m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "bob", active)
	_, err = f.m.SwitchTo("bob", "check")
	require.NoError(t, err)
}

// TestAnInterruptedHealThenAFlipByHand: a heal into bob stopped between its
// slot write and its swap; the operator then points the link at alice by
// hand. Whether watch sees the flip (RecordFlip) or the next heal runs
// first, finishing bob's heal records alice as live, so alice's next
// refresh is healed into alice, never into bob.
func TestAnInterruptedHealThenAFlipByHand(t *testing.T) {
	for _, seen := range []string{"by watch", "by the next heal"} {
		t.Run(seen, func(t *testing.T) {
			f := newFixture(t)
			refreshed := interruptedHeal(t, f)
			f.link(t, "alice") // ln -sfn .credentials.json.alice .credentials.json

			if seen == "by watch" {
				sub, ok, err := f.m.RecordFlip()
				require.NoError(t, err)
				assert.True(t, ok, "the flip is recorded once the heal is finished")
				assert.Equal(t, "alice", sub)
			} else {
				_, err := f.m.HealDrift()
				require.ErrorIs(t, err, ErrNoDrift)
			}
			assert.Equal(t, ".credentials.json.alice", f.readlink(t), "the operator's link is left alone")
			active, ok := f.m.LastActive()
			require.True(t, ok)
			assert.Equal(t, "alice", active, "the journal says what the link says")
			stored, ok := f.m.ReadStoredFingerprint("bob")
			require.True(t, ok)
			assert.Equal(t, hashBytes([]byte("rt-bob-2")), stored, "bob's heal is finished: its login captured")
			sub, ok, err := f.m.RecordFlip()
			require.NoError(t, err)
			assert.False(t, ok, "nothing more to record: %q", sub)

			f.refreshAt(t, claudeDoc(fresh.Add(2*time.Hour), "rt-alice-2"), later().Add(time.Minute))
			res, err := f.m.HealDrift()
			require.NoError(t, err)
			assert.Equal(t, "alice", res.Sub)
			assert.Equal(t, "rt-alice-2", refreshTokenOf(mustRead(t, f.slot("alice"))))
			assert.Equal(t, string(refreshed), string(mustRead(t, f.slot("bob"))), "bob's slot keeps bob's login")
		})
	}
}

// An interrupted heal that cannot be finished (its sub no longer
// configured, or an intent without the fingerprint it was writing) is no
// reason for RecordFlip to take the CLI's locks: watch calls it on every
// change, and the CLI may be refreshing at home meanwhile.
func TestRecordFlipLeavesAnUnfinishableHealAlone(t *testing.T) {
	for _, c := range []struct{ name, sub, fp string }{
		{"a sub no longer configured", "carol", hashBytes([]byte("rt-carol-2"))},
		{"no fingerprint", "bob", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, WithLockTimeout(300*time.Millisecond))
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			writeSlot(t, f.slot("alice"), fresh, "rt-alice")
			_, err := f.m.SwitchTo("bob", "start")
			require.NoError(t, err)
			appendJournal(t, f.m, JournalEntry{Time: testNow, Op: opHeal, Phase: phaseIntent, ID: "cut", Sub: c.sub,
				Reason: healHookReason, Fingerprint: c.fp})
			lock := filepath.Join(f.dir, claudeRefreshLock)
			require.NoError(t, os.Mkdir(lock, 0o755)) // the CLI refreshes at home
			defer os.Remove(lock)
			sub, ok, err := f.m.RecordFlip()
			require.NoError(t, err, "nothing to record: no wait for the CLI's lock")
			assert.False(t, ok, "%q", sub)
			assert.DirExists(t, lock, "the CLI's lock is left alone")
		})
	}
}

func TestARefreshInTheSameTickAsTheLastChangeIsHealed(t *testing.T) {
	f := newFixture(t) // the CLI locks are on
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	done := journalOf(t, f.m)[1]
	require.NotNil(t, done.LiveMtime)
	require.True(t, done.CLILocks)
	// Claude Code writes under the lock the switch held, so a file with
	// the very mtime of the placed link was written after it.
	f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"), *done.LiveMtime)
	_, err = f.m.HealDrift()
	require.NoError(t, err)
	got, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, "rt-bob-2", refreshTokenOf(got))
}

// A /login to dave, then a forced switch: the only copy of dave's login is
// kept as the live backup. Its file does not say whose account it is, so
// the keep record names the account .claude.json showed, and a restore of
// it into a sub that remembers another account is refused: it would file
// dave's login under bob (or alice). The live sub's own refresh, kept the
// same way, still goes back into its sub.
func TestAKeptNewLoginIsNotRestoredIntoAnotherAccountsSub(t *testing.T) {
	f, claudeJSONPath := accountsFixture(t) // bob live, .claude.json shows bob
	writeFile(t, claudeJSONPath, claudeJSON(daveAccount))
	login := claudeDoc(fresh.Add(time.Hour), "rt-dave")
	f.refreshAt(t, login, later())
	_, err := f.m.SwitchTo("alice", "rotate", Force())
	require.NoError(t, err)
	kept := filepath.Base(f.m.LivePath()) + prevSuffix
	got, err := os.ReadFile(filepath.Join(f.dir, kept))
	require.NoError(t, err)
	require.Equal(t, login, got, "dave's login is kept")

	before := map[string][]byte{}
	for _, sub := range []string{"alice", "bob"} {
		before[sub], err = os.ReadFile(f.slot(sub))
		require.NoError(t, err)
		err := f.m.Restore(kept, sub)
		require.ErrorIs(t, err, ErrIdentityDrift, sub)
		assert.Contains(t, err.Error(), "d-4", "%s: the refusal names the kept login's account", sub)
		assert.NotContains(t, err.Error(), "rt-dave", "no token material")
	}
	for sub, b := range before {
		got, err := os.ReadFile(f.slot(sub))
		require.NoError(t, err)
		assert.Equal(t, b, got, "%s's slot keeps its own login", sub)
	}

	// A sub that remembers no account may take it; forced, any may.
	require.NoError(t, f.m.Restore(kept, "erik"))
	got, err = os.ReadFile(f.slot("erik"))
	require.NoError(t, err)
	assert.Equal(t, login, got)
	require.NoError(t, f.m.Restore(kept, "bob", Force()), "forced, the operator's word stands")
}

// The live sub's own refresh, kept by a forced switch while .claude.json
// shows its account, goes back into that sub.
func TestAKeptRefreshIsRestoredIntoItsOwnSub(t *testing.T) {
	f, _ := accountsFixture(t) // bob live, .claude.json shows bob
	refresh := claudeDoc(fresh.Add(time.Hour), "rt-bob-2")
	f.refreshAt(t, refresh, later())
	_, err := f.m.SwitchTo("alice", "rotate", Force())
	require.NoError(t, err)
	kept := filepath.Base(f.m.LivePath()) + prevSuffix
	require.ErrorIs(t, f.m.Restore(kept, "alice"), ErrIdentityDrift, "bob's login is not alice's")
	require.NoError(t, f.m.Restore(kept, "bob"))
	got, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, refresh, got)
}

// The keep record that says whose account a kept live file holds outlives
// rotations of the journal (the backup does), up to keptRecords of them.
func TestAKeepRecordOutlivesARotation(t *testing.T) {
	f, claudeJSONPath := accountsFixture(t)
	writeFile(t, claudeJSONPath, claudeJSON(daveAccount))
	f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-dave"), later())
	_, err := f.m.SwitchTo("alice", "rotate", Force())
	require.NoError(t, err)
	kept := filepath.Base(f.m.LivePath()) + prevSuffix

	// Older keep records, more than a rotation keeps, then enough records
	// to rotate the journal twice over.
	var old bytes.Buffer
	for i := 0; i < keptRecords+6; i++ {
		line, err := encodeJournalLine(JournalEntry{Time: testNow, Op: opKeep, Phase: phaseDone, Fingerprint: fmt.Sprint("fp-", i), Account: "x-1", Kept: kept})
		require.NoError(t, err)
		old.Write(line)
	}
	data := append(old.Bytes(), mustRead(t, f.m.journalPath())...)
	writeFile(t, f.m.journalPath(), append(data, captureFill(t, 2*journalRotateAt)...))
	_, err = f.m.CaptureSlotFingerprint("bob") // one more record: the journal rotates
	require.NoError(t, err)
	require.Less(t, len(mustRead(t, f.m.journalPath())), journalRotateAt, "rotated")

	n, dave := 0, false
	for _, e := range journalOf(t, f.m) {
		if e.Op == opKeep {
			n++
			dave = dave || e.Account == "d-4"
		}
	}
	assert.True(t, dave, "the newest keep record stays")
	assert.Equal(t, keptRecords, n, "the oldest keep records past keptRecords go")
	require.ErrorIs(t, f.m.Restore(kept, "bob"), ErrIdentityDrift, "dave's login is still not bob's")
}
