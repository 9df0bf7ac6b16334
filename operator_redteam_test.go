package credslots

// Red-team replays of a person's steps (SPEC section 21) that the first
// round of the fix still got wrong.

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A /login to another account with Codex CLI or Gemini CLI, whose identity
// survives a refresh, is a new login: refused with ErrNewLogin (so watch
// reports it as one) and the reason names the command that files it.
func TestRedteamAStableIdentityNewLoginIsReportedAsANewLogin(t *testing.T) {
	for _, fc := range []struct {
		format Format
		doc    func(time.Time, string) []byte
	}{{CodexCLI, codexDoc}, {GeminiCLI, geminiDoc}} {
		t.Run(fc.format.Name(), func(t *testing.T) {
			f := newFixture(t, WithFormat(fc.format))
			bobBefore := fc.doc(fresh, "id-bob")
			writeFile(t, f.slot("bob"), bobBefore)
			writeFile(t, f.slot("alice"), fc.doc(fresh, "id-alice"))
			_, err := f.m.SwitchTo("alice", "start")
			require.NoError(t, err)
			_, err = f.m.SwitchTo("bob", "start")
			require.NoError(t, err)
			login := fc.doc(fresh.Add(time.Hour), "id-dave")
			f.refreshAt(t, login, later())

			for name, heal := range map[string]func() (SwitchResult, error){
				"HealDrift":   func() (SwitchResult, error) { return f.m.HealDrift() },
				"HealDriftTo": func() (SwitchResult, error) { return f.m.HealDriftTo("bob") },
			} {
				res, err := heal()
				require.ErrorIs(t, err, ErrNewLogin, name)
				require.ErrorIs(t, err, ErrIdentityDrift, name)
				assert.Contains(t, res.Reason, "credslots add NAME", name)
			}
			got, err := os.ReadFile(f.slot("bob"))
			require.NoError(t, err)
			assert.Equal(t, bobBefore, got)
			_, err = f.m.Adopt("erik")
			require.NoError(t, err, "filed under a sub of its own")
		})
	}
}

// bobDriftedAndMarked is bob switched to, the CLI's refresh live (rt-bob-2)
// and the server's rejection of it recorded.
func bobDriftedAndMarked(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"), later())
	require.NoError(t, f.m.MarkInvalid("bob", "401"))
	return f
}

// The mark recorded on bob's drifted live login stands on bob's slot too:
// it holds an older login of the same account, not a new one.
func TestRedteamAMarkOnTheDriftedLiveStandsOnTheSlot(t *testing.T) {
	f := bobDriftedAndMarked(t)
	_, err := f.m.SwitchTo("alice", "away", Force()) // keeps rt-bob-2 as .prev
	require.NoError(t, err)
	_, err = f.m.SwitchTo("bob", "back")
	require.ErrorIs(t, err, ErrInvalidated, "bob's slot is the same account's login")
	_, err = f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("bob", "back")
	require.ErrorIs(t, err, ErrInvalidated, "a capture with no new login keeps it")
	for _, c := range f.m.Candidates() {
		if c.Sub == "bob" {
			assert.True(t, c.Invalid)
			assert.False(t, c.Usable)
		}
	}
}

// The CLI refreshes again after the rejection, before any heal: healing
// that refresh keeps the mark.
func TestRedteamAMarkSurvivesASecondRefreshBeforeTheHeal(t *testing.T) {
	f := bobDriftedAndMarked(t)
	f.refreshAt(t, claudeDoc(fresh.Add(2*time.Hour), "rt-bob-3"), later().Add(time.Minute))
	_, err := f.m.HealDrift()
	require.NoError(t, err)
	_, err = f.m.SwitchTo("alice", "away")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("bob", "back")
	require.ErrorIs(t, err, ErrInvalidated, "no new login happened")
}

// A switch whose splice of .claude.json failed (Claude Code held
// .claude.json.lock) leaves .claude.json showing the previous sub's
// account. That is no news of a login: the next routine refresh of the sub
// switched to is healed into it, and a heal named for the previous sub is
// refused, not sent there.
func TestRedteamASwitchWhoseSpliceFailedDoesNotBlockTheNextRefresh(t *testing.T) {
	f, claudeJSONPath := homeFixture(t, WithLockTimeout(200*time.Millisecond))
	learnAccounts(t, f, claudeJSONPath) // live -> bob, .claude.json shows bob
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	require.NoError(t, os.Mkdir(claudeJSONPath+".lock", 0o700)) // Claude Code saving .claude.json
	_, err = f.m.SwitchTo("alice", "rotate")
	require.NoError(t, err)
	got, err := os.ReadFile(claudeJSONPath)
	require.NoError(t, err)
	require.JSONEq(t, bobAccount, string(accountIn(got)), "the splice gave up")
	bobBefore, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	refreshed := claudeDoc(fresh.Add(time.Hour), "rt-alice-2")
	f.refreshAt(t, refreshed, later())

	_, err = f.m.HealDriftTo("bob")
	require.Error(t, err, "alice's refresh is not bob's")
	got, err = os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, bobBefore, got, "bob's slot keeps bob's login")

	res, err := f.m.HealDrift()
	require.NoError(t, err, "a routine refresh of alice is healed: %s", res.Reason)
	got, err = os.ReadFile(f.slot("alice"))
	require.NoError(t, err)
	assert.Equal(t, refreshed, got)
}

// bob's routine refresh, drifted live while .claude.json still shows bob's
// account, is not a new login: adopting it as another sub is refused,
// naming the heal that files it, and bob's slot is not left behind with a
// used-up refresh token while erik gets bob's login. A real new login
// (.claude.json shows its account) is still adopted.
func TestRedteamAdoptRefusesTheLiveSubsRefresh(t *testing.T) {
	f, claudeJSONPath := accountsFixture(t)
	refreshed := claudeDoc(fresh.Add(time.Hour), "rt-bob-2")
	f.refreshAt(t, refreshed, later())
	res, err := f.m.Adopt("erik")
	require.ErrorIs(t, err, ErrIdentityDrift)
	assert.Contains(t, res.Reason, "credslots heal bob")
	assert.NoFileExists(t, f.slot("erik"))

	_, err = f.m.HealDrift()
	require.NoError(t, err)
	got, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, refreshed, got)

	writeFile(t, claudeJSONPath, claudeJSON(daveAccount))
	f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-dave"), later().Add(time.Minute))
	_, err = f.m.Adopt("erik")
	require.NoError(t, err, "a new login is adopted")
}

// The way out a mark's refusal names works: bob logs in again (a new
// login of his own account, which the heal cannot tell from a refresh and
// so carries the mark onto), then bob's slot is captured, as the refusal
// says; bob is usable again. A capture of the very login the server
// rejected keeps the mark.
func TestRedteamLoggingInAgainThenCaptureClearsTheMark(t *testing.T) {
	f, claudeJSONPath := accountsFixture(t)
	require.NoError(t, f.m.MarkInvalid("bob", "401"))
	_, err := f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("alice", "away")
	require.NoError(t, err)
	res, err := f.m.SwitchTo("bob", "back")
	require.ErrorIs(t, err, ErrInvalidated, "capturing the rejected login itself keeps the mark")
	assert.Contains(t, res.Reason, "capture")

	_, err = f.m.SwitchTo("bob", "log in again", Force())
	require.NoError(t, err)
	// /login as bob: a new login of the same account.
	writeFile(t, claudeJSONPath, claudeJSON(bobAccount))
	f.refreshAt(t, claudeDoc(fresh.Add(3*time.Hour), "rt-bob-relogin"), later())
	_, err = f.m.HealDrift() // watch heals it at once
	require.NoError(t, err)
	_, err = f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("alice", "away")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("bob", "back")
	require.NoError(t, err, "logged in again and captured, bob is usable")
}

// A /login to dave left live (watch reported it as a new login), then a
// forced switch: the kept copy is not journaled as bob's, so backups does
// not name bob for it and restore does not take it for bob's own login.
func TestRedteamAForcedSwitchDoesNotCallANewLoginTheLiveSubs(t *testing.T) {
	f, claudeJSONPath := accountsFixture(t)
	writeFile(t, claudeJSONPath, claudeJSON(daveAccount))
	f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-dave"), later())
	_, err := f.m.HealDrift()
	require.ErrorIs(t, err, ErrNewLogin)

	_, err = f.m.SwitchTo("alice", "rotate", Force())
	require.NoError(t, err)
	backups, err := f.m.Backups()
	require.NoError(t, err)
	found := false
	for _, b := range backups {
		if b.Name == ".credentials.json.prev" {
			found = true
			assert.NotEqual(t, "bob", b.Sub, "dave's login is not bob's")
		}
	}
	assert.True(t, found)
	for _, e := range journalOf(t, f.m) {
		if e.Fingerprint == hashBytes([]byte("rt-dave")) {
			assert.NotEqual(t, "bob", e.Sub, "the journal records dave's login for bob: %+v", e)
		}
	}
	require.NoError(t, f.m.Restore(".credentials.json.prev", "erik"), "filed under a sub of its own")
}

// A forced switch over a drifted live file names the command that puts the
// only copy of its login back where it belongs.
func TestRedteamAForcedSwitchNamesTheRestore(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"), later())
	res, err := f.m.SwitchTo("alice", "rotate", Force())
	require.NoError(t, err)
	assert.Contains(t, res.Reason, "credslots restore .credentials.json.prev bob")
}

// .claude.json was missing when bob was switched away from (nothing to
// splice, no account journaled), and Claude Code, still showing bob's
// profile, writes it again. That is no login of bob: a heal named for bob
// is refused while the journal says alice is live, so alice's refresh
// never lands in bob's slot.
func TestRedteamAStaleAccountWithNoBaselineDoesNotSendAHealAcross(t *testing.T) {
	f, claudeJSONPath := accountsFixture(t) // bob live, .claude.json shows bob
	require.NoError(t, os.Remove(claudeJSONPath))
	_, err := f.m.SwitchTo("alice", "rotate")
	require.NoError(t, err)
	writeFile(t, claudeJSONPath, claudeJSON(bobAccount)) // Claude Code's cached profile
	bobBefore, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-alice-2"), later())

	res, err := f.m.HealDrift()
	require.ErrorIs(t, err, ErrIdentityDrift, "the shown account is bob's, the journal says alice: refused")
	t.Log(res.Reason)
	_, err = f.m.HealDriftTo("bob")
	require.ErrorIs(t, err, ErrIdentityDrift, "alice's refresh is not bob's")
	got, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, bobBefore, got, "bob's slot keeps bob's login")
	// .claude.json shows bob's account, so only the operator can say it
	// is alice's: forced, it heals.
	_, err = f.m.HealDriftTo("alice", Force())
	require.NoError(t, err)
}

// A restore killed after it wrote the slot and before it captured the
// fingerprint leaves bob's slot holding exactly the login it restored:
// that is no identity drift, and bob can be switched to.
func TestRedteamAnInterruptedRestoreIsNotFlagged(t *testing.T) {
	for _, cut := range []string{"before its outcome", "before its capture"} {
		t.Run(cut, func(t *testing.T) {
			f := newFixture(t)
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			writeSlot(t, f.slot("alice"), fresh, "rt-alice")
			_, err := f.m.SwitchTo("bob", "start")
			require.NoError(t, err)
			_, err = f.m.SwitchTo("alice", "away")
			require.NoError(t, err)
			sidecar, err := os.ReadFile(f.m.prints["bob"])
			require.NoError(t, err)
			older := claudeDoc(fresh.Add(time.Hour), "rt-bob-older")
			fp := hashBytes([]byte("rt-bob-older"))
			if cut == "before its outcome" {
				appendJournal(t, f.m, JournalEntry{Time: testNow, Op: opRestore, Phase: phaseIntent, ID: "cut", Sub: "bob",
					Reason: "restore x", Fingerprint: fp})
				writeFile(t, f.slot("bob"), older)
			} else {
				writeFile(t, f.slot("bob")+".prev", older)
				require.NoError(t, f.m.Restore(".credentials.json.bob.prev", "bob"))
				writeFile(t, f.m.prints["bob"], sidecar) // the capture never happened
			}
			info, err := f.m.DetectSlotIdentityDrift("bob")
			require.NoError(t, err)
			assert.False(t, info.Drift, info.Reason)
			_, err = f.m.SwitchTo("bob", "back")
			require.NoError(t, err)
		})
	}
}

// With a journal migrated from the old switch log (no account recorded),
// .claude.json shows alice's account while the journal says bob: the
// refusal names a command, and that command heals.
func TestRedteamTheRefusalsCommandWorksWithAMigratedJournal(t *testing.T) {
	f, claudeJSONPath := homeFixture(t)
	learnAccounts(t, f, claudeJSONPath) // live -> bob
	appendJournal(t, f.m, JournalEntry{Time: testNow.Add(-time.Hour), Op: opSwitch, Phase: phaseDone, Sub: "bob", Migrated: true})
	writeFile(t, claudeJSONPath, claudeJSON(aliceAccount))
	f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-alice-new"), later())

	res, err := f.m.HealDrift()
	require.ErrorIs(t, err, ErrIdentityDrift)
	var opts []SwitchOption
	switch {
	case strings.Contains(res.Reason, "credslots heal alice --force"):
		opts = append(opts, Force())
	case strings.Contains(res.Reason, "credslots heal alice"):
	default:
		t.Fatalf("no command named: %s", res.Reason)
	}
	_, err = f.m.HealDriftTo("alice", opts...)
	require.NoError(t, err, "the command the refusal named: %s", res.Reason)
}

// An add (Adopt) of dave's new login killed after it wrote erik's slot is
// finished by the next heal with dave's account captured, as the add would
// have: a later /login to frank is then a new login, not erik's refresh.
func TestRedteamAnInterruptedAdoptStillLearnsItsAccount(t *testing.T) {
	f, claudeJSONPath := accountsFixture(t)
	writeFile(t, claudeJSONPath, claudeJSON(daveAccount))
	login := claudeDoc(fresh.Add(time.Hour), "rt-dave")
	f.refreshAt(t, login, later())
	appendJournal(t, f.m, JournalEntry{Time: testNow, Op: opAdopt, Phase: phaseIntent, ID: "cut", Sub: "erik",
		Reason: adoptHookReason, Fingerprint: hashBytes([]byte("rt-dave"))})
	writeFile(t, f.slot("erik"), login)

	_, err := f.m.HealDrift()
	require.ErrorIs(t, err, ErrNoDrift, "finished: the link is back")
	_, acct, err := f.m.storedSidecar("erik")
	require.NoError(t, err)
	assert.JSONEq(t, daveAccount, string(acct), "erik remembers dave's account")
}

// A .claude.json.lock Claude Code left (killed while saving) makes the
// splice wait, while the switch holds the storage-write lock on which
// Claude Code's own credentials writes give up after about 7.5 s: the wait
// is bounded well inside that, whatever the lock timeout.
func TestRedteamASpliceWaitNeverOutlastsClaudeCodesStorageWrites(t *testing.T) {
	f, claudeJSONPath := homeFixture(t) // the default lock timeout, 10 s
	learnAccounts(t, f, claudeJSONPath)
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	require.NoError(t, os.Mkdir(claudeJSONPath+".lock", 0o700))
	start := time.Now()
	_, err = f.m.SwitchTo("alice", "rotate")
	require.NoError(t, err, "the switch is made; only the splice gives up")
	took := time.Since(start)
	assert.GreaterOrEqual(t, took, spliceLockWait, "the splice waited for the lock")
	assert.Less(t, took, spliceLockWait+3*time.Second, "and no longer than its bound")
	assert.Less(t, spliceLockWait, 7*time.Second)
	got, err := os.ReadFile(claudeJSONPath)
	require.NoError(t, err)
	assert.JSONEq(t, bobAccount, string(accountIn(got)), "the splice gave up")
	sub, _ := f.m.ActiveSubscription()
	assert.Equal(t, "alice", sub)
}
