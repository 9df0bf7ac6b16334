//go:build unix

package main

// Red-team replays of issue 17 (SPEC section 21, "The command speaks the
// command's language"): what a new user still met after the first round.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A boolean flag given a bad value is worded by the command, not by Go's
// flag package ("invalid boolean value ... for -json: parse error").
func TestRedteam17BoolFlagErrorInOwnWords(t *testing.T) {
	dir := credsDir(t, testNow)
	r := run("--dir", dir, "--json=maybe", "status")
	assert.Equal(t, 2, r.code)
	assert.NotContains(t, r.stderr, "parse error")
	assert.NotContains(t, r.stderr, "invalid boolean value")
	assert.Contains(t, r.stderr, `--json "maybe": not true or false`)
}

// Every duration flag reads 1d and words a bare number as the others do;
// --lock-timeout and run --wait rejected 1d and said only "not valid".
func TestRedteam17EveryDurationFlagReadsDays(t *testing.T) {
	dir := credsDir(t, testNow)
	r := run("--dir", dir, "--lock-timeout", "1d", "status")
	assert.Equal(t, 0, r.code, r.stderr)
	for _, args := range [][]string{
		{"--dir", dir, "--lock-timeout", "5", "status"},
		{"--dir", dir, "run", "--wait", "5", "--", "true"},
	} {
		r := run(args...)
		assert.Equal(t, 2, r.code, "%v", args)
		assert.Contains(t, r.stderr, "write it with a unit", "%v", args)
		assert.NotContains(t, r.stderr, "not valid", "%v", args)
	}
}

// A refused action still says which sub was active before ("from"), not
// "" while bob's symlink is live.
func TestRedteam17RefusalCarriesFrom(t *testing.T) {
	dir := credsDir(t, testNow) // bob active, alice expired
	captureAll(t, dir)
	for _, args := range [][]string{
		{"switch", "alice"}, // not fresh
		{"heal", "bob"},     // no drift
		{"heal", "--auto"},  // no drift
		{"add", "dave"},     // no new login
	} {
		r := run(append([]string{"--dir", dir, "--json"}, args...)...)
		require.Equal(t, 1, r.code, "%v: %s", args, r.stderr)
		doc := r.json(t)
		assert.Equal(t, false, doc["ok"], "%v", args)
		assert.Equal(t, "bob", doc["from"], "%v: from is the active sub", args)
	}
}

// add with no new login in the live file says what to do: log in with
// the CLI, then run credslots add again; "no drift" alone is a dead end.
func TestRedteam17AddWithoutANewLoginSaysWhatToDo(t *testing.T) {
	dir := credsDir(t, testNow)
	captureAll(t, dir)
	r := run("--dir", dir, "add", "dave")
	require.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "credslots add dave")
	assert.Contains(t, r.stderr, "log in")
}

// A login to a new account (live file replaced, .claude.json showing the
// new account): status, check and a switch refusal name credslots add NAME,
// the command that files it, never a heal that refuses it.
func TestRedteam17NewLoginDriftNamesAdd(t *testing.T) {
	dir, claudeJSON := homeWithAccounts(t) // bob active
	live := filepath.Join(dir, ".credentials.json")
	require.NoError(t, os.Remove(live))
	write(t, live, cred(testNow.Add(8*time.Hour), "rt-carol"))
	write(t, claudeJSON, claudeState("carol@example.test", "uuid-carol"))

	r := run("--dir", dir, "heal", "--auto")
	require.Equal(t, 1, r.code, r.stderr)
	require.Contains(t, r.stderr, "identity_drift", "heal refuses this login")

	for _, args := range [][]string{{"check"}, {"status"}, {"switch", "alice"}} {
		r := run(append([]string{"--dir", dir}, args...)...)
		out := r.stdout + r.stderr
		assert.Contains(t, out, "credslots add NAME", "%v names the command that files a new login", args)
		assert.NotContains(t, out, "credslots heal", "%v does not send the user to a heal that refuses", args)
	}
}

// problemLine returns the line of out that contains what, failing when none.
func problemLine(t *testing.T, out, what string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, what) {
			return l
		}
	}
	require.Failf(t, "no such problem", "%q in %q", what, out)
	return ""
}

// Each problem where rotation would fail names the command that fixes it.
func TestRedteam17ProblemsNameTheirFix(t *testing.T) {
	t.Run("only sub", func(t *testing.T) {
		dir := t.TempDir()
		write(t, filepath.Join(dir, ".credentials.json"), cred(testNow.Add(8*time.Hour), "rt-one"))
		require.Equal(t, 0, run("--dir", dir, "init", "alice").code)
		r := run("--dir", dir, "check")
		assert.Contains(t, problemLine(t, r.stdout, "only sub"), "credslots add NAME")
	})
	t.Run("active resting", func(t *testing.T) {
		dir := credsDir(t, testNow)
		require.Equal(t, 0, run("--dir", dir, "rest", "bob", "--for", "1h").code)
		r := run("--dir", dir, "check")
		l := problemLine(t, r.stdout, "active sub bob rests")
		assert.Contains(t, l, "credslots switch --next")
		assert.Contains(t, l, "credslots rest bob --clear")
	})
	t.Run("configured sub with no slot", func(t *testing.T) {
		dir := credsDir(t, testNow)
		r := run("--dir", dir, "--subs", "bob,erik,dave", "check")
		assert.Contains(t, problemLine(t, r.stdout, "sub dave has no slot"), "credslots add dave")
	})
}

// A restore into a removed sub's empty slot does not claim to have kept a
// login the slot did not hold.
func TestRedteam17RestoreAfterRemoveSaysNoBackupOfNothing(t *testing.T) {
	dir := credsDir(t, testNow) // bob active
	captureAll(t, dir)
	require.Equal(t, 0, run("--dir", dir, "remove", "erik").code)
	r := run("--dir", dir, "restore", ".credentials.json.erik.prev", "erik")
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stdout, "the login it held before")
}

// -h and --help under --json print one JSON object, as help does.
func TestRedteam17HelpFlagUnderJSON(t *testing.T) {
	for _, args := range [][]string{{"--json", "switch", "--help"}, {"--json", "-h"}, {"rest", "-h", "--json"}} {
		r := run(args...)
		assert.Equal(t, 0, r.code, "%v", args)
		doc := r.json(t)
		assert.Equal(t, true, doc["ok"], "%v", args)
		assert.Contains(t, doc["help"], "usage: credslots", "%v", args)
	}
}

// observe and run are actions: their --json results carry action, sub and
// from (the sub active at home), as every other action's do.
func TestRedteam17ObserveAndRunResultsCarryFrom(t *testing.T) {
	dir := credsDir(t, testNow) // bob active
	captureAll(t, dir)
	head := "HTTP/2 429\r\nretry-after: 3600\r\n\r\n"
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"observe", "erik"}, 1},   // rested
		{[]string{"observe", "nobody"}, 1}, // refused
		{[]string{"run", "--sub", "alice", "--", "true"}, 75},
	} {
		r := runIn(strings.NewReader(head), append([]string{"--dir", dir, "--json"}, c.args...)...)
		require.Equal(t, c.code, r.code, "%v: %s", c.args, r.stderr)
		doc := r.json(t)
		for _, k := range []string{"ok", "action", "sub", "from"} {
			assert.Contains(t, doc, k, "%v", c.args)
		}
		assert.Equal(t, "bob", doc["from"], "%v", c.args)
	}
}

// A switch refused because an expiresAt written in seconds reads as
// decades ago says why, as check does.
func TestRedteam17SwitchToASecondsExpiryGivesTheHint(t *testing.T) {
	dir := credsDir(t, testNow) // bob active
	write(t, filepath.Join(dir, ".credentials.json.sec"),
		[]byte(fmt.Sprintf(`{"claudeAiOauth":{"accessToken":"at-s","refreshToken":"rt-s","expiresAt":%d}}`, testNow.Add(5*time.Hour).Unix())))
	r := run("--dir", dir, "switch", "sec")
	require.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "not_fresh")
	assert.Contains(t, r.stderr, "looks like seconds written where milliseconds belong")
}

// A slot whose identity drifted cannot be switched to; check names the
// command that clears it, as the switch refusal does.
func TestRedteam17IdentityDriftProblemNamesCapture(t *testing.T) {
	dir := credsDir(t, testNow) // erik's login replaced after capture
	captureAll(t, dir)
	r := run("--dir", dir, "check")
	assert.Contains(t, problemLine(t, r.stdout, "slot erik: identity drift"), "credslots capture erik")
}

// The active sub marked invalid names the way out; rest without a time
// names --clear too.
func TestRedteam17ActiveInvalidAndRestUsageNameTheirFix(t *testing.T) {
	dir := credsDir(t, testNow) // bob active
	captureAll(t, dir)
	require.Equal(t, 0, run("--dir", dir, "invalid", "bob").code)
	r := run("--dir", dir, "check")
	assert.Contains(t, problemLine(t, r.stdout, "active slot bob was rejected"), "credslots switch --next")
	r = run("--dir", dir, "rest", "bob")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, strings.Split(r.stderr, "\n")[0], "--clear")
}

// rest --clear on a sub that does not rest says so and changes nothing,
// as a switch to the active sub does.
func TestRedteam17RestClearOfASubNotResting(t *testing.T) {
	dir := credsDir(t, testNow)
	captureAll(t, dir)
	before := run("--dir", dir, "log").stdout
	r := run("--dir", dir, "--json", "rest", "erik", "--clear")
	require.Equal(t, 0, r.code, r.stderr)
	doc := r.json(t)
	assert.Equal(t, false, doc["changed"])
	assert.Contains(t, doc["reason"], "not resting")
	assert.Equal(t, before, run("--dir", dir, "log").stdout, "nothing journaled")
}

// remove, then restore of the removed sub's own backup: the slot again
// remembers its account, so status shows its e-mail and a switch to it
// updates .claude.json.
func TestRedteam17RemoveThenRestoreKeepsTheAccount(t *testing.T) {
	dir, claudeJSON := homeWithAccounts(t) // bob active
	require.Equal(t, 0, run("--dir", dir, "remove", "alice").code)
	r := run("--dir", dir, "restore", ".credentials.json.alice.prev", "alice")
	require.Equal(t, 0, r.code, r.stderr)
	r = run("--dir", dir, "status")
	assert.Contains(t, r.stdout, "alice@example.test", "status shows alice's e-mail again")
	r = run("--dir", dir, "switch", "alice")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, mustRead(t, claudeJSON), "alice@example.test", "the switch spliced alice's account")
}
