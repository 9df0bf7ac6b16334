//go:build unix

package main

// Red-team replays of a person's own steps through the command (SPEC
// sections 20 and 21).

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cp .credentials.json.bob .credentials.json.alice, then capture alice:
// refused in the command's words, alice's identity left as it was.
func TestOperatorCaptureOfACopiedSlotIsRefused(t *testing.T) {
	dir, _ := homeWithAccounts(t)
	bob := mustRead(t, filepath.Join(dir, ".credentials.json.bob"))
	write(t, filepath.Join(dir, ".credentials.json.alice"), []byte(bob))
	r := run("--dir", dir, "capture", "alice")
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Contains(t, r.stderr, "identity_drift")
	assert.Contains(t, r.stderr, "same login as bob's slot")
	assert.Contains(t, r.stderr, "credslots backups alice")
	r = run("--dir", dir, "check")
	assert.Equal(t, exitRefused, r.code, "alice's drift is still a problem: %s", r.stdout)
}

// remove of the sub whose refreshed login is live (a regular file) is
// refused and says to heal first; after the heal and a switch away it
// works, the newest login kept as the slot's backup.
func TestOperatorRemoveOfTheRefreshedLiveSub(t *testing.T) {
	dir, _ := homeWithAccounts(t) // bob active
	time.Sleep(20 * time.Millisecond)
	refreshed := cred(testNow.Add(9*time.Hour), "rt-bob-2")
	claudeRefresh(t, dir, refreshed)
	r := run("--dir", dir, "remove", "bob")
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Contains(t, r.stderr, "credslots heal bob")
	for _, args := range [][]string{{"heal", "bob"}, {"switch", "alice"}, {"remove", "bob"}} {
		r = run(append([]string{"--dir", dir}, args...)...)
		require.Equal(t, exitOK, r.code, "%v: %s", args, r.stderr)
	}
	assert.Equal(t, string(refreshed), mustRead(t, filepath.Join(dir, ".credentials.json.bob.prev")))
}

// heal and switch with neither a SUB nor their flag say what is missing.
func TestOperatorHealWithNoTargetSaysWhatIsMissing(t *testing.T) {
	dir, _ := homeWithAccounts(t)
	for cmd, flag := range map[string]string{"heal": "--auto", "switch": "--next"} {
		r := run("--dir", dir, cmd)
		assert.Equal(t, exitError, r.code, r.stderr)
		assert.Contains(t, r.stderr, "name a SUB or pass "+flag)
		assert.NotContains(t, r.stderr, "not both", cmd)
		r = run("--dir", dir, cmd, flag, "bob")
		assert.Contains(t, r.stderr, "not both", cmd)
	}
}

// rm .credentials.json.bob while bob is live: the broken link's problem
// says the way forward, not only what is wrong.
func TestOperatorASlotRemovedByHandWhileLive(t *testing.T) {
	dir, _ := homeWithAccounts(t) // bob active
	require.NoError(t, os.Remove(filepath.Join(dir, ".credentials.json.bob")))
	for _, cmd := range []string{"status", "check"} {
		r := run("--dir", dir, cmd)
		assert.Contains(t, r.stdout, "live symlink is broken", cmd)
		assert.Contains(t, r.stdout, "credslots switch --next", cmd)
		assert.Contains(t, r.stdout, "credslots backups", cmd)
	}
	r := run("--dir", dir, "switch", "--next")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "alice")
}

// A forced switch away from bob's refreshed live file keeps it as
// .credentials.json.prev: backups names bob as the sub it belonged to, the
// restore the switch named into another sub is refused, and into bob it
// brings the newest login back.
func TestOperatorForcedSwitchThenRestoreOfThePrev(t *testing.T) {
	dir, _ := homeWithAccounts(t) // bob active
	time.Sleep(20 * time.Millisecond)
	refreshed := cred(testNow.Add(9*time.Hour), "rt-bob-2")
	claudeRefresh(t, dir, refreshed)
	r := run("--dir", dir, "switch", "--force", "alice")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "credslots restore .credentials.json.prev bob")
	r = run("--dir", dir, "backups")
	require.Equal(t, exitOK, r.code, r.stderr)
	var line string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, ".credentials.json.prev ") {
			line = l
		}
	}
	assert.Regexp(t, `^\.credentials\.json\.prev\s+\.credentials\.json\s+bob\s`, line, r.stdout)
	assert.Contains(t, r.stdout, "SUB")
	r = run("--dir", dir, "restore", ".credentials.json.prev", "alice")
	assert.Equal(t, exitRefused, r.code)
	assert.Contains(t, r.stderr, "credslots restore .credentials.json.prev bob")
	r = run("--dir", dir, "restore", ".credentials.json.prev", "bob")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, string(refreshed), mustRead(t, filepath.Join(dir, ".credentials.json.bob")))
}

// Where credslots cannot tell whose login the live file holds, its advice
// leaves the sub for the operator to name (NAME), never the sub of the
// command that was refused or that ran: that sub is the guess the advice
// says may be wrong.
func TestOperatorAdviceNeverFillsInAGuessedSub(t *testing.T) {
	t.Run("heal --auto, ambiguous", func(t *testing.T) {
		dir, _ := homeWithAccounts(t) // bob active
		r := run("--dir", dir, "switch", "alice")
		require.Equal(t, exitOK, r.code, r.stderr)
		switched := time.Now()
		// bob's refresh, written just before the switch to alice ended.
		claudeRefresh(t, dir, cred(testNow.Add(9*time.Hour), "rt-bob-2"))
		at := switched.Add(-500 * time.Millisecond)
		require.NoError(t, os.Chtimes(filepath.Join(dir, ".credentials.json"), at, at))
		r = run("--dir", dir, "heal", "--auto")
		assert.Equal(t, exitRefused, r.code, r.stderr)
		assert.Contains(t, r.stderr, "ambiguous")
		assert.Contains(t, r.stderr, "credslots heal NAME")
		assert.Contains(t, r.stderr, "may hold the previous sub's (bob's) token")
		assert.NotContains(t, r.stderr, "credslots heal alice", "alice is the guess in doubt")
	})
	t.Run("forced switch over a new login", func(t *testing.T) {
		dir, claudeJSON := homeWithAccounts(t) // bob active
		live := filepath.Join(dir, ".credentials.json")
		require.NoError(t, os.Remove(live))
		write(t, live, cred(testNow.Add(8*time.Hour), "rt-carol"))
		write(t, claudeJSON, claudeState("carol@example.test", "uuid-carol"))
		r := run("--dir", dir, "switch", "alice", "--force")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, "credslots restore .credentials.json.prev NAME")
		assert.NotContains(t, r.stdout, "credslots restore .credentials.json.prev alice", "the switch's target is not carol's sub")
	})
}

// A /login whose account reached .claude.json only after a heal filed its
// credentials under the active sub: status and check say so, where before
// they said all was well.
func TestOperatorALoginHealedBeforeItsAccountArrivedIsAProblem(t *testing.T) {
	dir, claudeJSON := homeWithAccounts(t) // bob active
	r := run("--dir", dir, "check")
	require.Equal(t, exitOK, r.code, r.stdout)
	time.Sleep(20 * time.Millisecond)
	claudeRefresh(t, dir, cred(testNow.Add(9*time.Hour), "rt-carol"))
	r = run("--dir", dir, "heal", "--auto")
	require.Equal(t, exitOK, r.code, "no account news yet: a refresh, to all appearances: %s", r.stderr)
	write(t, claudeJSON, claudeState("carol@example.test", "uuid-carol"))
	for _, cmd := range []string{"status", "check"} {
		r = run("--dir", dir, cmd)
		assert.Contains(t, r.stdout, ".claude.json shows carol@example.test, which no slot remembers, while the live link points at bob, which remembers bob@example.test", cmd)
		assert.Contains(t, r.stdout, "credslots backups bob", cmd)
	}
	assert.Equal(t, exitRefused, r.code, "check fails")

	// A sub that remembers no account may be the one shown (its seat's
	// Claude Code writes the .claude.json home shares): no such problem.
	write(t, filepath.Join(dir, ".credentials.json.carol"), cred(testNow.Add(8*time.Hour), "rt-carol-seat"))
	r = run("--dir", dir, "--subs", "bob,alice", "check")
	assert.Contains(t, r.stdout, "which no slot remembers", "carol is not configured")
	write(t, claudeJSON, []byte(`{}`)) // no account to remember
	r = run("--dir", dir, "--subs", "bob,alice,carol", "capture", "carol")
	require.Equal(t, exitOK, r.code, r.stderr)
	write(t, claudeJSON, claudeState("carol@example.test", "uuid-carol"))
	r = run("--dir", dir, "--subs", "bob,alice,carol", "check")
	assert.NotContains(t, r.stdout, "which no slot remembers", "carol remembers no account")
	require.NoError(t, os.Remove(filepath.Join(dir, ".credentials.json.carol")))

	// .claude.json showing the account the active sub remembers, or one
	// another slot remembers, is no such problem.
	for _, who := range []string{"bob", "alice"} {
		write(t, claudeJSON, claudeState(who+"@example.test", "uuid-"+who))
		r = run("--dir", dir, "check")
		assert.NotContains(t, r.stdout, "which no slot remembers", who)
	}
}
