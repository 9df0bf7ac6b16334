package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// transcript runs commands in order and records each one's arguments,
// exit code, stdout and stderr, with dir written as $DIR, for a golden file.
type transcript struct {
	t   *testing.T
	dir string
	b   strings.Builder
}

func (tr *transcript) run(want int, args ...string) result {
	tr.t.Helper()
	r := run(append([]string{"--dir", tr.dir}, args...)...)
	fmt.Fprintf(&tr.b, "$ credslots %s\n", strings.Join(args, " "))
	if r.stdout != "" {
		fmt.Fprintf(&tr.b, "%s", r.stdout)
	}
	if r.stderr != "" {
		fmt.Fprintf(&tr.b, "[stderr]\n%s", r.stderr)
	}
	fmt.Fprintf(&tr.b, "[exit %d]\n\n", r.code)
	require.Equal(tr.t, want, r.code, "credslots %v: stdout %s stderr %s", args, r.stdout, r.stderr)
	if !strings.Contains(strings.Join(args, " "), "Force") { // the user's own typo is echoed
		assertCommandWords(tr.t, r.stdout+r.stderr)
	}
	if strings.Contains(strings.Join(args, " "), "--json") {
		doc := r.json(tr.t)
		assert.Contains(tr.t, doc, "ok", "every JSON object carries ok: %v", args)
	}
	return r
}

func (tr *transcript) golden(name string) {
	tr.t.Helper()
	golden(tr.t, name, strings.ReplaceAll(tr.b.String(), tr.dir, "$DIR"))
}

// libraryName matches what only a Go caller of the library would know:
// method, option and sentinel names.
var libraryName = regexp.MustCompile(`\b(HealDriftTo|HealDrift|SwitchTo|SwitchNext|CaptureSlotFingerprint|Adopt|MarkInvalid|Restore|Force|WithCLILocks|Err[A-Z]\w+)\b`)

// assertCommandWords checks that output speaks the command's language.
func assertCommandWords(t *testing.T, out string) {
	t.Helper()
	assert.NotRegexp(t, libraryName, out, "no library names in what the command prints")
	assert.NotRegexp(t, `\d{4,}m\b`, out, "no durations in thousands of minutes")
	assert.NotContains(t, out, "rt-", "no token material")
}

// plainLogin is a creds dir as nearly everyone starts: one regular
// .credentials.json, and Claude Code's .claude.json with the account.
func plainLogin(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o700))
	write(t, filepath.Join(dir, ".credentials.json"), cred(testNow.Add(7*time.Hour), "rt-work"))
	write(t, filepath.Join(dir, ".claude.json"),
		[]byte(`{"numStartups":3,"oauthAccount":{"accountUuid":"acc-work","emailAddress":"me@work.example","organizationUuid":"org-1"}}`))
	return dir
}

func TestInitFromASinglePlainLogin(t *testing.T) {
	dir := plainLogin(t)
	// Copies people leave beside the file are no subs.
	write(t, filepath.Join(dir, ".credentials.json.bak"), cred(testNow.Add(-time.Hour), "rt-old"))
	write(t, filepath.Join(dir, ".credentials.json.orig"), cred(testNow.Add(-time.Hour), "rt-old"))
	write(t, filepath.Join(dir, ".credentials.json.settings"), []byte(`{"theme":"dark"}`))
	login := mustRead(t, filepath.Join(dir, ".credentials.json"))
	tr := &transcript{t: t, dir: dir}

	r := tr.run(0, "status")
	assert.Contains(t, r.stdout, "credslots init NAME")
	r = tr.run(1, "check")
	assert.Contains(t, r.stdout, "credslots init NAME")
	r = tr.run(0, "--json", "status")
	assert.Equal(t, "credslots init NAME", r.json(t)["setup"])
	r = tr.run(1, "--subs", "work", "check")
	assert.Contains(t, r.stdout, "credslots init NAME", "a configured sub with no slot: the same way in")
	tr.run(1, "switch", "work")
	r = tr.run(1, "--json", "heal", "--auto")
	assert.Equal(t, "not_set_up", r.json(t)["error"])

	r = tr.run(0, "init", "work")
	target, err := os.Readlink(filepath.Join(dir, ".credentials.json"))
	require.NoError(t, err)
	assert.Equal(t, ".credentials.json.work", target)
	assert.Equal(t, login, mustRead(t, filepath.Join(dir, ".credentials.json.work")), "the login, byte for byte")
	var sidecar map[string]any
	require.NoError(t, json.Unmarshal([]byte(mustRead(t, filepath.Join(dir, ".credentials.json.work.fingerprint.json"))), &sidecar))
	assert.NotEmpty(t, sidecar["refresh_token_sha256"], "identity captured")
	assert.Equal(t, "acc-work", sidecar["oauth_account"].(map[string]any)["accountUuid"], "account captured")

	r = tr.run(0, "status")
	assert.Contains(t, r.stdout, "me@work.example")
	assert.Contains(t, r.stdout, "no usable sub besides the active one (work)")
	tr.run(1, "init", "work")
	tr.run(1, "--json", "init", "other")
	tr.golden("init.golden")
}

func TestInitRefusals(t *testing.T) {
	empty := t.TempDir()
	r := run("--dir", empty, "init", "work")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "no_login")
	r = run("--dir", empty, "status")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "log in with the CLI first, then run credslots init NAME")

	// An expired login: the CLI refreshes it when next used.
	dir := t.TempDir()
	write(t, filepath.Join(dir, ".credentials.json"), cred(testNow.Add(-time.Hour), "rt-work"))
	r = run("--dir", dir, "init", "work")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "use the CLI once so that it refreshes its token, then run credslots init work")
	assertCommandWords(t, r.stderr)
	assert.NoFileExists(t, filepath.Join(dir, ".credentials.json.work"))

	r = run("--dir", dir, "init", "a/b")
	assert.Equal(t, 2, r.code)
}

// TestCredsDirFromTheCLIsVariables: with no --dir, the command looks where
// the CLI does.
func TestCredsDirFromTheCLIsVariables(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, v := range []string{"CLAUDE_SECURESTORAGE_CONFIG_DIR", "CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME"} {
		t.Setenv(v, "") // restored afterwards
		require.NoError(t, os.Unsetenv(v))
	}
	claude := plainLogin(t)
	t.Setenv("CLAUDE_CONFIG_DIR", claude)
	r := run("--json", "status")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, claude, r.json(t)["creds_dir"], "CLAUDE_CONFIG_DIR")

	secure := plainLogin(t)
	t.Setenv("CLAUDE_SECURESTORAGE_CONFIG_DIR", secure)
	r = run("--json", "status")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, secure, r.json(t)["creds_dir"], "CLAUDE_SECURESTORAGE_CONFIG_DIR first")

	codex := t.TempDir()
	write(t, filepath.Join(codex, "auth.json"), []byte(`{"tokens":{"access_token":"x","account_id":"a"}}`))
	t.Setenv("CODEX_HOME", codex)
	r = run("--tool", "codex", "--json", "status")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, codex, r.json(t)["creds_dir"], "CODEX_HOME")

	gemini := t.TempDir()
	write(t, filepath.Join(gemini, ".gemini", "oauth_creds.json"), []byte(`{"access_token":"x","refresh_token":"y","expiry_date":1}`))
	t.Setenv("GEMINI_CLI_HOME", gemini)
	r = run("--tool", "gemini", "--json", "status")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, filepath.Join(gemini, ".gemini"), r.json(t)["creds_dir"], "GEMINI_CLI_HOME")

	t.Setenv("CLAUDE_SECURESTORAGE_CONFIG_DIR", "")
	t.Setenv("CLAUDE_CONFIG_DIR", "")
	r = run("status")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, filepath.Join(home, ".claude"), "else the home directory")
}

// rotation builds bob (active), alice and erik, all fresh, with their
// identities captured, bob's account remembered.
func rotation(t *testing.T) string {
	t.Helper()
	dir := plainLogin(t)
	require.NoError(t, os.Remove(filepath.Join(dir, ".credentials.json")))
	write(t, filepath.Join(dir, ".credentials.json.bob"), cred(testNow.Add(7*time.Hour), "rt-bob"))
	write(t, filepath.Join(dir, ".credentials.json.alice"), cred(testNow.Add(5*time.Hour), "rt-alice"))
	write(t, filepath.Join(dir, ".credentials.json.erik"), cred(testNow.Add(3*24*time.Hour+4*time.Hour), "rt-erik"))
	for _, sub := range []string{"alice", "erik"} {
		require.Equal(t, 0, run("--dir", dir, "capture", sub).code)
	}
	require.Equal(t, 0, run("--dir", dir, "switch", "bob").code)
	return dir
}

// TestCheckSaysWhenRotationWouldFail: the active sub rests, the other is
// invalid, the third expired: check says so, and switch --next agrees.
func TestCheckSaysWhenRotationWouldFail(t *testing.T) {
	dir := rotation(t)
	tr := &transcript{t: t, dir: dir}
	tr.run(0, "check")
	tr.run(0, "rest", "bob", "--for", "1d")
	tr.run(0, "invalid", "alice")
	write(t, filepath.Join(dir, ".credentials.json.erik"), cred(testNow.Add(-20*24*time.Hour), "rt-erik"))
	r := tr.run(1, "check")
	assert.Contains(t, r.stdout, "active sub bob rests until 2026-01-02T12:00:00Z")
	assert.Contains(t, r.stdout, "no usable sub besides the active one (bob)")
	assert.Contains(t, r.stdout, "expired 20d ago")
	tr.run(1, "switch", "--next")
	tr.run(1, "--json", "check")

	// A configured sub with no slot, a slot that is no credential, an
	// expiry in seconds.
	write(t, filepath.Join(dir, ".credentials.json.erik"), []byte(`{"theme":"dark"}`))
	write(t, filepath.Join(dir, ".credentials.json.alice"),
		[]byte(fmt.Sprintf(`{"claudeAiOauth":{"accessToken":"a","refreshToken":"rt-alice","expiresAt":%d}}`, testNow.Add(5*time.Hour).Unix())))
	r = tr.run(1, "--subs", "bob,alice,erik,zed", "check")
	assert.Contains(t, r.stdout, "sub zed has no slot")
	assert.Contains(t, r.stdout, "slot erik (.credentials.json.erik) is not a claude credential at all")
	assert.Contains(t, r.stdout, "looks like seconds written where milliseconds belong")
	tr.golden("check-rotation.golden")
}

func TestRestClearRemoveAlreadyActive(t *testing.T) {
	dir := rotation(t)
	tr := &transcript{t: t, dir: dir}
	journal := func() int {
		data, _ := os.ReadFile(filepath.Join(dir, ".credslots", "journal.jsonl"))
		return strings.Count(string(data), "\n")
	}
	before := tree(t, dir)
	n := journal()
	r := tr.run(0, "switch", "bob")
	assert.Equal(t, "bob is already active; nothing changed\n", r.stdout)
	r = tr.run(0, "--json", "switch", "bob")
	assert.Equal(t, false, r.json(t)["changed"])
	assert.Equal(t, before, tree(t, dir), "nothing changed")
	assert.Equal(t, n, journal(), "nothing journaled")

	tr.run(0, "rest", "alice", "--for", "3d4h", "--reason", "weekly limit")
	r = tr.run(0, "status")
	assert.Contains(t, r.stdout, "resting in 3d4h")
	tr.run(0, "rest", "alice", "--clear")
	r = tr.run(0, "status")
	assert.NotContains(t, r.stdout, "resting")
	tr.run(0, "--json", "rest", "alice", "--clear")
	tr.run(2, "rest", "alice", "--clear", "--for", "1h")

	tr.run(1, "remove", "bob")
	tr.run(0, "remove", "erik")
	assert.NoFileExists(t, filepath.Join(dir, ".credentials.json.erik"))
	assert.FileExists(t, filepath.Join(dir, ".credentials.json.erik.prev"))
	r = tr.run(0, "status")
	assert.NotContains(t, r.stdout, "erik", "out of the rotation")
	tr.run(0, "--json", "restore", ".credentials.json.erik.prev", "erik")
	r = tr.run(0, "--json", "remove", "erik")
	doc := r.json(t)
	for _, k := range []string{"ok", "action", "sub", "from", "reason"} {
		assert.Contains(t, doc, k)
	}
	assert.Equal(t, "bob", doc["from"])
	tr.run(0, "--json", "capture", "alice")
	tr.run(0, "--json", "switch", "alice")
	tr.golden("rotation.golden")
	r = run("--dir", dir, "--json", "backups")
	assert.Contains(t, r.stdout, `"name": ".credentials.json.erik.prev"`, "the backup of a removed sub is listed")
	assert.Equal(t, true, r.json(t)["ok"])
	r = run("--dir", dir, "--json", "log", "-n", "1")
	assert.Equal(t, true, r.json(t)["ok"])
}

// TestFlagErrorsInTheCommandsWords: flag errors name flags as the help does
// and suggest the nearest command or flag; durations take days.
func TestFlagErrorsInTheCommandsWords(t *testing.T) {
	dir := rotation(t)
	tr := &transcript{t: t, dir: dir}
	r := tr.run(2, "statsu")
	assert.Contains(t, r.stderr, `unknown command "statsu"; did you mean status?`)
	r = tr.run(2, "switch", "bob", "--Force")
	assert.Contains(t, r.stderr, "unknown flag --Force; did you mean --force?")
	r = tr.run(2, "rest", "bob", "--for", "90")
	assert.Contains(t, r.stderr, `--for "90": not a duration`)
	r = tr.run(2, "rest", "bob", "--for")
	assert.Contains(t, r.stderr, "--for needs a value")
	tr.run(2, "log", "-n", "many")
	tr.run(2, "--grace", "soon", "status")
	tr.run(2, "--json", "swich", "bob")
	tr.run(2, "frobnicate")
	r = tr.run(0, "--grace", "1d", "--json", "status")
	tr.golden("flags.golden")
	_ = r
}

func TestParseDurationAndNearest(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1d": 24 * time.Hour, "3d4h": 76 * time.Hour, "90m": 90 * time.Minute, "2h30m": 150 * time.Minute,
		"1d30m": 24*time.Hour + 30*time.Minute, "45s": 45 * time.Second, "-1d": -24 * time.Hour, "0s": 0,
	} {
		got, err := parseDuration(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"90", "", "d", "1dd", "1d-3h", "x", "1w"} {
		_, err := parseDuration(bad)
		assert.Error(t, err, bad)
	}
	for _, long := range []string{"100000d200000h", "-100000d200000h", "3000000h", "200000d", "110000d", "99999999999999999999d"} {
		_, err := parseDuration(long)
		assert.ErrorIs(t, err, errTooLong, long)
	}
	got, err := parseDuration("106751d")
	require.NoError(t, err, "the longest whole number of days a duration holds")
	assert.Equal(t, 106751*24*time.Hour, got)
	r := run("--grace", "100000d200000h", "status")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "too long a duration")
	assert.NotContains(t, r.stderr, "negative")
	names := []string{"status", "switch", "heal", "add", "init", "remove", "rest"}
	for in, want := range map[string]string{"statsu": "status", "swich": "switch", "Heal": "heal", "ad": "add",
		"remvoe": "remove", "xyz": "", "inti": "init", "rset": "rest"} {
		assert.Equal(t, want, nearest(in, names), in)
	}
	assert.Equal(t, "5m ago", ago(testNow.Add(-5*time.Minute), testNow))
	assert.Equal(t, "now", ago(testNow.Add(time.Minute), testNow), "another host's clock")
	assert.Equal(t, "36600d ago", ago(testNow.Add(-36600*24*time.Hour), testNow))
	assert.Equal(t, "3d4h", human(76*time.Hour+30*time.Minute))
	assert.Equal(t, "20d", human(20*24*time.Hour))
	assert.Equal(t, "expired 20767d14h ago (at x)", speak("expired 29905364m ago (at x)", ""))
}

func TestSpeakIsIdempotent(t *testing.T) {
	for _, s := range []string{
		"live file matches no slot (drift, typically after the CLI refreshed its token): heal it into the slot that was active",
		"refusing to switch to bob: x; verify the login, then CaptureSlotFingerprint (or Force)",
		"refusing to switch to erik: live file .credentials.json matches no slot and would be lost; heal it into its slot first (HealDriftTo) or Force to keep it as .credentials.json.prev",
		"refusing to adopt into bob: y (or Force)",
		"expired 3000m ago (at x)",
	} {
		once := speak(s, "")
		assert.Equal(t, once, speak(once, ""), s)
		assertCommandWords(t, once)
	}
}

// TestSwitchToALinkMadeByHand: the journal does not know the link, so the
// switch records it (and says so) instead of answering "already active".
func TestSwitchToALinkMadeByHand(t *testing.T) {
	dir := credsDir(t, testNow) // bob linked by hand, nothing journaled
	r := run("--dir", dir, "switch", "bob")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "bob was already active; the journal now records it, so that heal --auto knows whose token is live\n", r.stdout)
	r = run("--dir", dir, "switch", "bob")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "bob is already active; nothing changed\n", r.stdout)
	r = run("--tool", "cluade", "status")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "did you mean claude?")
}

func TestInitGeminiAndSubsFlag(t *testing.T) {
	dir := t.TempDir()
	live := fmt.Sprintf(`{"access_token":"at","refresh_token":"rt-g","expiry_date":%d}`, testNow.Add(time.Hour).UnixMilli())
	write(t, filepath.Join(dir, "oauth_creds.json"), []byte(live))
	r := run("--tool", "gemini", "--dir", dir, "--subs", "me", "init", "me")
	require.Equal(t, 0, r.code, r.stderr)
	target, err := os.Readlink(filepath.Join(dir, "oauth_creds.json"))
	require.NoError(t, err)
	assert.Equal(t, "oauth_creds.json.me", target)
	assert.Equal(t, live, mustRead(t, filepath.Join(dir, "oauth_creds.json.me")))
	r = run("--tool", "gemini", "--dir", dir, "init", "me")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "already_set_up")
}

// initThenANewLogin is plainLogin set up as sub work (init), then a
// /login to a second account: Claude Code replaces the live link with a
// regular file and .claude.json shows the new account.
func initThenANewLogin(t *testing.T) (dir, live, claudeJSON string) {
	t.Helper()
	dir = plainLogin(t)
	require.Equal(t, 0, run("--dir", dir, "init", "work").code)
	live = filepath.Join(dir, ".credentials.json")
	tmp := filepath.Join(dir, ".tmp")
	write(t, tmp, cred(testNow.Add(7*time.Hour), "rt-home"))
	require.NoError(t, os.Rename(tmp, live))
	claudeJSON = filepath.Join(dir, ".claude.json")
	write(t, claudeJSON, []byte(`{"numStartups":3,"oauthAccount":{"accountUuid":"acc-home","emailAddress":"me@home.example","organizationUuid":"org-2"}}`))
	return dir, live, claudeJSON
}

// A /login to a second account after init, switched away from with
// --force: the forced switch's advice, followed literally with a new
// name, files that login under a new sub, which then switches in. A
// restore of that login into work, whose account it is not, is refused.
func TestAForcedSwitchsKeptLoginGoesIntoANewSub(t *testing.T) {
	dir, live, claudeJSON := initThenANewLogin(t)

	r := run("--dir", dir, "switch", "work")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "--force to keep it as .credentials.json.prev")
	r = run("--dir", dir, "switch", "work", "--force")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "credslots restore .credentials.json.prev NAME")

	r = run("--dir", dir, "restore", ".credentials.json.prev", "work")
	assert.Equal(t, 1, r.code, "the new login is not work's: %s", r.stdout)
	r = run("--dir", dir, "restore", ".credentials.json.prev", "home")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "restored .credentials.json.prev into home's slot")
	assert.Contains(t, string(mustRead(t, filepath.Join(dir, ".credentials.json.home"))), `"refreshToken":"rt-home"`)
	assert.NotContains(t, r.stdout+r.stderr, "rt-")

	r = run("--dir", dir, "switch", "home")
	require.Equal(t, 0, r.code, r.stderr)
	target, err := os.Readlink(live)
	require.NoError(t, err)
	assert.Equal(t, ".credentials.json.home", target)
	r = run("--dir", dir, "switch", "work")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, string(mustRead(t, claudeJSON)), "me@work.example")
}

// remove of the sub the journal says was active, while the live file holds
// a login to a new account: the refusal's advice is add, as status's, and
// following it lets the remove through.
func TestRemoveAfterALoginToANewAccountAdvisesAdd(t *testing.T) {
	dir, _, _ := initThenANewLogin(t)

	r := run("--dir", dir, "remove", "work")
	require.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "credslots add NAME")
	assert.NotContains(t, r.stderr, "credslots heal work")
	assert.Equal(t, 1, run("--dir", dir, "heal", "work").code, "no heal takes a new login")
	require.Equal(t, 0, run("--dir", dir, "add", "home").code)
	r = run("--dir", dir, "remove", "work")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, string(mustRead(t, filepath.Join(dir, ".credentials.json.home"))), `"refreshToken":"rt-home"`)
}

// add with nothing at the live path (the link removed before a login that
// has not happened yet): the refusal says to log in, not to remove a link
// that is not there.
func TestAddWithNoLiveFileSaysToLogIn(t *testing.T) {
	for _, c := range []struct {
		tool, live, slot string
		login            []byte
	}{
		{"codex", "auth.json", "auth.json.work", codexCred(testNow.Add(7 * time.Hour))},
		{"claude", ".credentials.json", ".credentials.json.work", cred(testNow.Add(7*time.Hour), "rt-work")},
	} {
		t.Run(c.tool, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, c.slot), c.login)
			r := run("--tool", c.tool, "--dir", dir, "add", "third")
			require.Equal(t, 1, r.code, r.stdout+r.stderr)
			assert.Contains(t, r.stderr, "nothing is at the live path "+filepath.Join(dir, c.live))
			assert.Contains(t, r.stderr, "then run credslots add third")
			assert.NotContains(t, r.stderr, "rm ")
			assert.NoFileExists(t, filepath.Join(dir, c.live+".third"))
		})
	}
}

// The backup a remove kept of a sub's slot is that sub's: restored into
// another sub it is refused as that sub's login (not "no backup named"),
// goes through with --force, and into its own sub brings the sub back.
func TestARemovedSubsBackupIsFoundForAnyTarget(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{"work", "home", "third"} {
		write(t, filepath.Join(dir, ".credentials.json."+sub), cred(testNow.Add(7*time.Hour), "rt-"+sub))
	}
	require.NoError(t, os.Symlink(".credentials.json.third", filepath.Join(dir, ".credentials.json")))
	for _, sub := range []string{"work", "home", "third"} {
		require.Equal(t, 0, run("--dir", dir, "capture", sub).code)
	}
	r := run("--dir", dir, "remove", "home")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, ".credentials.json.home.prev")

	r = run("--dir", dir, "--json", "restore", ".credentials.json.home.prev", "work")
	require.Equal(t, 1, r.code, r.stdout)
	assert.Equal(t, "identity_drift", r.json(t)["error"], r.stdout)
	assert.Contains(t, string(mustRead(t, filepath.Join(dir, ".credentials.json.work"))), `"rt-work"`, "work keeps its login")
	r = run("--dir", dir, "restore", ".credentials.json.home.prev", "home")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, string(mustRead(t, filepath.Join(dir, ".credentials.json.home"))), `"rt-home"`)
}
