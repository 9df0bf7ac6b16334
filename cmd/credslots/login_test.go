//go:build unix

package main

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

// claudeState is a .claude.json as Claude Code writes it, showing account.
func claudeState(email, uuid string) []byte {
	return []byte(fmt.Sprintf("{\n  \"numStartups\": 3,\n  \"oauthAccount\": {\"accountUuid\": %q, \"emailAddress\": %q, \"organizationUuid\": \"org\"},\n  \"userID\": \"u\"\n}\n", uuid, email))
}

// homeWithAccounts is HOME/.claude with bob and alice, each account
// captured while .claude.json (beside .claude) showed it, then bob switched
// to by the command: the way an operator sets up after two logins.
func homeWithAccounts(t *testing.T) (dir, claudeJSON string) {
	t.Helper()
	home := t.TempDir()
	dir = filepath.Join(home, ".claude")
	claudeJSON = filepath.Join(home, ".claude.json")
	write(t, filepath.Join(dir, ".credentials.json.bob"), cred(testNow.Add(8*time.Hour), "rt-bob"))
	write(t, filepath.Join(dir, ".credentials.json.alice"), cred(testNow.Add(8*time.Hour), "rt-alice"))
	require.NoError(t, os.Chmod(dir, 0o700))
	live := filepath.Join(dir, ".credentials.json")
	for _, who := range []string{"alice", "bob"} {
		_ = os.Remove(live)
		require.NoError(t, os.Symlink(".credentials.json."+who, live))
		write(t, claudeJSON, claudeState(who+"@example.test", "uuid-"+who))
		r := run("--dir", dir, "capture", who)
		require.Equal(t, 0, r.code, r.stderr)
	}
	r := run("--dir", dir, "switch", "alice")
	require.Equal(t, 0, r.code, r.stderr)
	r = run("--dir", dir, "switch", "bob")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, mustRead(t, claudeJSON), "bob@example.test", "the switch spliced bob's account")
	return dir, claudeJSON
}

func TestWatchReportsANewLoginInEitherWriteOrder(t *testing.T) {
	for _, order := range []string{"claude.json first", "credentials first"} {
		t.Run(order, func(t *testing.T) {
			dir, claudeJSON := homeWithAccounts(t)
			bobBefore := mustRead(t, filepath.Join(dir, ".credentials.json.bob"))
			w := startWatch(t, "--dir", dir, "--json", "watch", "--login-settle", "300ms")
			time.Sleep(20 * time.Millisecond)

			login := cred(testNow.Add(9*time.Hour), "rt-dave")
			if order == "claude.json first" {
				write(t, claudeJSON, claudeState("dave@example.test", "uuid-dave"))
				claudeRefresh(t, dir, login)
			} else {
				claudeRefresh(t, dir, login)
				time.Sleep(100 * time.Millisecond) // the profile arrives a little later
				write(t, claudeJSON, claudeState("dave@example.test", "uuid-dave"))
			}

			require.Eventually(t, func() bool { return len(w.events(t)) >= 1 }, 3*time.Second, 10*time.Millisecond,
				"an event; stdout %s stderr %s", w.stdout, w.stderr)
			time.Sleep(400 * time.Millisecond) // nothing else follows
			events := w.events(t)
			require.Len(t, events, 1, "one event: %s", w.stdout)
			ev := events[0]
			assert.Equal(t, "new_login", ev["event"])
			assert.Contains(t, ev["reason"], "credslots add NAME")
			assert.Contains(t, ev["reason"], "dave@example.test")
			assert.Equal(t, bobBefore, mustRead(t, filepath.Join(dir, ".credentials.json.bob")), "bob's slot keeps bob's login")
			assert.Equal(t, string(login), mustRead(t, filepath.Join(dir, ".credentials.json")), "the new login stays live")
			assert.Equal(t, 0, w.stop(t))

			// heal --auto refuses it the same way, naming the command that files it.
			r := run("--dir", dir, "heal", "--auto")
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, "credslots add NAME")
			// add files it into a sub of its own.
			r = run("--dir", dir, "--subs", "bob,alice,dave", "add", "dave")
			require.Equal(t, 0, r.code, r.stderr)
			assert.Equal(t, string(login), mustRead(t, filepath.Join(dir, ".credentials.json.dave")))
			assert.Equal(t, bobBefore, mustRead(t, filepath.Join(dir, ".credentials.json.bob")))
		})
	}
}

func TestWatchStillHealsARefreshOfTheSameAccount(t *testing.T) {
	dir, claudeJSON := homeWithAccounts(t)
	w := startWatch(t, "--dir", dir, "--json", "watch", "--login-settle", "300ms")
	time.Sleep(20 * time.Millisecond)
	refreshed := cred(testNow.Add(9*time.Hour), "rt-bob-2")
	claudeRefresh(t, dir, refreshed)
	// Claude Code saves .claude.json on its own too; the account stays bob's.
	write(t, claudeJSON, claudeState("bob@example.test", "uuid-bob"))

	require.Eventually(t, func() bool {
		return mustRead(t, filepath.Join(dir, ".credentials.json.bob")) == string(refreshed) && len(w.events(t)) == 1
	}, 3*time.Second, 10*time.Millisecond, "healed; stdout %s stderr %s", w.stdout, w.stderr)
	assert.Equal(t, "healed", w.events(t)[0]["event"])
	target, err := os.Readlink(filepath.Join(dir, ".credentials.json"))
	require.NoError(t, err)
	assert.Equal(t, ".credentials.json.bob", target)
}

func TestWatchJournalsAHandFlip(t *testing.T) {
	dir, _ := homeWithAccounts(t)
	w := startWatch(t, "--dir", dir, "--json")
	time.Sleep(20 * time.Millisecond)
	live := filepath.Join(dir, ".credentials.json")
	// The README's opening lines: rotate by hand.
	tmp := live + ".hand"
	require.NoError(t, os.Symlink(".credentials.json.alice", tmp))
	require.NoError(t, os.Rename(tmp, live))
	require.Eventually(t, func() bool { return len(w.events(t)) == 1 }, 2*time.Second, 10*time.Millisecond, "%s", w.stdout)
	assert.Equal(t, "flip", w.events(t)[0]["event"])
	assert.Equal(t, "alice", w.events(t)[0]["sub"])

	time.Sleep(20 * time.Millisecond)
	refreshed := cred(testNow.Add(9*time.Hour), "rt-alice-2")
	claudeRefresh(t, dir, refreshed)
	require.Eventually(t, func() bool { return len(w.events(t)) == 2 }, 2*time.Second, 10*time.Millisecond, "%s", w.stdout)
	assert.Equal(t, "healed", w.events(t)[1]["event"])
	assert.Equal(t, string(refreshed), mustRead(t, filepath.Join(dir, ".credentials.json.alice")), "alice's refresh is in alice's slot")
	assert.True(t, strings.Contains(mustRead(t, filepath.Join(dir, ".credentials.json.bob")), "rt-bob"), "bob's slot is untouched")
	assert.Equal(t, 0, w.stop(t))

	// heal --auto, reading the same journal, would have chosen alice too.
	r := run("--dir", dir, "--json", "log", "-n", "3")
	assert.Contains(t, r.stdout, `"flip"`)
}

func TestHealRefusesAnOlderCopyWithItsOwnWord(t *testing.T) {
	dir, _ := homeWithAccounts(t)
	live := filepath.Join(dir, ".credentials.json")
	require.NoError(t, os.Remove(live))
	write(t, live, cred(testNow.Add(7*time.Hour), "rt-bob-old")) // expires before bob's slot
	later := time.Now().Add(time.Second)
	require.NoError(t, os.Chtimes(live, later, later))

	r := run("--dir", dir, "--json", "heal", "--auto")
	assert.Equal(t, 1, r.code, r.stderr)
	doc := r.json(t)
	assert.Equal(t, "older_login", doc["error"])
	assert.Contains(t, doc["reason"], "credslots switch bob --force")
	assert.Contains(t, mustRead(t, filepath.Join(dir, ".credentials.json.bob")), "rt-bob\"", "bob's newer login stays")
}

// A heal --auto from cron that lands inside a real /login (Claude Code
// 2.1.332: the credentials {}, .claude.json without its account, the new
// credentials, then the new account a moment later) saw no account and
// healed the new login into bob's slot. It now defers, and the login,
// once its account is written, is refused as new.
func TestHealAutoInsideALoginDefers(t *testing.T) {
	dir, claudeJSON := homeWithAccounts(t)
	bobSlot := filepath.Join(dir, ".credentials.json.bob")
	bobBefore := mustRead(t, bobSlot)
	claudeRefresh(t, dir, []byte(`{}`))
	write(t, claudeJSON, []byte("{\n  \"numStartups\": 3,\n  \"userID\": \"u\"\n}\n")) // the account dropped
	claudeRefresh(t, dir, cred(testNow.Add(9*time.Hour), "rt-dave"))
	r := run("--dir", dir, "--json", "heal", "--auto")
	assert.Equal(t, exitRefused, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, `"deferred"`)
	assert.Contains(t, r.stdout, "a login may be under way")
	assert.Equal(t, bobBefore, mustRead(t, bobSlot), "bob's slot keeps bob's login")
	fi, err := os.Lstat(filepath.Join(dir, ".credentials.json"))
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular(), "the login stays live")

	write(t, claudeJSON, claudeState("dave@example.test", "uuid-dave"))
	r = run("--dir", dir, "--json", "heal", "--auto")
	assert.Equal(t, exitRefused, r.code)
	assert.Contains(t, r.stdout, "a new login", "once its account is written, a new login")
	assert.Equal(t, bobBefore, mustRead(t, bobSlot))
}

// A sub may be named like a copy or a temporary (old, backup, tmpwork):
// init and add set it up, captured, and discovery keeps it, where before
// every later command found no slot, and init then refused as set up.
func TestInitAndAddUnderACopyLikeName(t *testing.T) {
	for _, name := range []string{"backup", "old", "copy", "tmpwork"} {
		t.Run(name, func(t *testing.T) {
			dir := plainLogin(t)
			tr := &transcript{t: t, dir: dir}
			tr.run(0, "init", name)
			r := tr.run(0, "--json", "status")
			assert.Contains(t, r.stdout, `"`+name+`"`, "the sub init set up is listed")
			assert.NotContains(t, r.stdout, "matches no configured slot")
			r = tr.run(1, "check")
			assert.Contains(t, r.stdout, "no usable sub besides the active one ("+name+")", "one sub, set up")

			write(t, filepath.Join(dir, ".claude.json"), []byte(`{"oauthAccount":{"accountUuid":"acc-dave","emailAddress":"dave@example.test"}}`))
			claudeRefresh(t, dir, cred(testNow.Add(9*time.Hour), "rt-dave"))
			tr.run(0, "add", name+"2")
			r = tr.run(0, "--json", "status")
			assert.Contains(t, r.stdout, `"`+name+`2"`, "the sub add filed is listed")
			claudeRefresh(t, dir, cred(testNow.Add(10*time.Hour), "rt-dave-2"))
			tr.run(0, "heal", "--auto")
			assert.Contains(t, mustRead(t, filepath.Join(dir, ".credentials.json."+name+"2")), "rt-dave-2", "its refresh is healed into it")
		})
	}
}

// A dry run of a heal sees the account the real heal sees: over a /login to
// another account both refuse, and the dry run leaves bob's slot alone.
func TestHealDryRunRefusesANewLoginAsTheHealDoes(t *testing.T) {
	dir, claudeJSON := homeWithAccounts(t)
	write(t, claudeJSON, claudeState("dave@example.test", "uuid-dave"))
	claudeRefresh(t, dir, cred(testNow.Add(9*time.Hour), "rt-dave"))
	bob := mustRead(t, filepath.Join(dir, ".credentials.json.bob"))

	for _, args := range [][]string{{"heal", "bob", "--dry-run"}, {"heal", "--auto", "--dry-run"}, {"heal", "bob"}} {
		r := run(append([]string{"--dir", dir}, args...)...)
		assert.Equal(t, 1, r.code, "%v refuses: stdout %q stderr %q", args, r.stdout, r.stderr)
		assert.Contains(t, r.stderr, "new login", "%v", args)
	}
	assert.Equal(t, bob, mustRead(t, filepath.Join(dir, ".credentials.json.bob")))
	left, err := filepath.Glob(filepath.Join(dir, ".*dryrun-*"))
	require.NoError(t, err)
	assert.Empty(t, left, "the dry runs' copies are removed")
}

// A .claude.json of a few MB (its project history grows it) is one the
// library reads: the dry run copies it too, and agrees with the heal.
func TestHealDryRunCopiesALargeClaudeJSON(t *testing.T) {
	dir, claudeJSON := homeWithAccounts(t)
	state := strings.Replace(string(claudeState("bob@example.test", "uuid-bob")), `"userID"`,
		`"projects": "`+strings.Repeat("x", 2<<20)+`", "userID"`, 1)
	write(t, claudeJSON, []byte(state))
	claudeRefresh(t, dir, cred(testNow.Add(9*time.Hour), "rt-bob-2"))
	dry := run("--dir", dir, "heal", "bob", "--dry-run")
	require.Equal(t, 0, dry.code, "stdout %q stderr %q", dry.stdout, dry.stderr)
	assert.Contains(t, dry.stdout, "would have healed")
	real := run("--dir", dir, "heal", "bob")
	require.Equal(t, 0, real.code, real.stderr)
}
