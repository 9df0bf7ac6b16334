//go:build unix

package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A seat's Claude Code keeps its config dir at home (only its credentials
// are in the seat), so it writes its own account into the .claude.json
// home shares. That account, of a sub leased since the last change, looks
// like a /login at home: a heal refuses as ambiguous, and names both ways
// out, rather than file bob's refresh under alice (or alice's new login
// under bob).
func TestAnAccountASeatMayHaveWrittenIsNotTakenForHomesLogin(t *testing.T) {
	for _, what := range []string{"bob's refresh", "a /login as alice"} {
		t.Run(what, func(t *testing.T) {
			dir, claudeJSON := homeWithAccounts(t)
			t.Setenv("HOME", filepath.Dir(dir))
			t.Setenv("NEWSTATE", string(claudeState("alice@example.test", "uuid-alice")))
			r := run("--dir", dir, "run", "--sub", "alice", "--", "sh", "-c",
				`printf '%s' "$NEWSTATE" > "$HOME/.claude.json.tmp" && mv "$HOME/.claude.json.tmp" "$HOME/.claude.json"`)
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, mustRead(t, claudeJSON), "alice@example.test", "the seat's CLI wrote its account")
			alice, bob := filepath.Join(dir, ".credentials.json.alice"), filepath.Join(dir, ".credentials.json.bob")
			aliceBefore, bobBefore := mustRead(t, alice), mustRead(t, bob)
			time.Sleep(20 * time.Millisecond)
			token, owner := "rt-bob-2", "bob"
			if what != "bob's refresh" {
				write(t, claudeJSON, claudeState("alice@example.test", "uuid-alice"))
				token, owner = "rt-alice-new", "alice"
			}
			claudeRefresh(t, dir, cred(testNow.Add(9*time.Hour), token))

			for _, args := range [][]string{{"heal", "--auto"}, {"heal", "alice"}, {"heal", "bob"}} {
				r := run(append([]string{"--dir", dir}, args...)...)
				assert.Equal(t, 1, r.code, "%v: stdout %q stderr %q", args, r.stdout, r.stderr)
			}
			assert.Equal(t, aliceBefore, mustRead(t, alice))
			assert.Equal(t, bobBefore, mustRead(t, bob))
			r = run("--dir", dir, "heal", "--auto")
			assert.Contains(t, r.stderr, "(ambiguous)")
			assert.Contains(t, r.stderr, "credslots heal "+owner+" --force", "the way out for this case is named")

			forced := run("--dir", dir, "heal", owner, "--force")
			require.Equal(t, 0, forced.code, forced.stderr)
			assert.Contains(t, mustRead(t, filepath.Join(dir, ".credentials.json."+owner)), token)
		})
	}
}

// A secure-storage creds dir set up with $CLAUDE_SECURESTORAGE_CONFIG_DIR,
// healed by a job that runs without it, finds no .claude.json: the journal
// recorded an account at the last change, so the heal cannot tell a refresh
// from a new login and refuses, saying what to set, rather than heal a new
// login into the active slot.
func TestAHealThatCannotFindTheAccountTheJournalRecordedRefuses(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	dir := filepath.Join(home, "agent-creds")
	claudeJSON := filepath.Join(home, ".claude.json")
	t.Setenv("CLAUDE_SECURESTORAGE_CONFIG_DIR", dir)
	write(t, filepath.Join(dir, ".credentials.json.bob"), cred(testNow.Add(8*time.Hour), "rt-bob"))
	write(t, filepath.Join(dir, ".credentials.json.alice"), cred(testNow.Add(8*time.Hour), "rt-alice"))
	live := filepath.Join(dir, ".credentials.json")
	for _, who := range []string{"alice", "bob"} {
		_ = os.Remove(live)
		require.NoError(t, os.Symlink(".credentials.json."+who, live))
		write(t, claudeJSON, claudeState(who+"@example.test", "uuid-"+who))
		require.Equal(t, 0, run("--dir", dir, "capture", who).code)
	}
	require.Equal(t, 0, run("--dir", dir, "switch", "alice").code)
	require.Equal(t, 0, run("--dir", dir, "switch", "bob").code)
	bob := filepath.Join(dir, ".credentials.json.bob")
	bobBefore := mustRead(t, bob)
	write(t, claudeJSON, claudeState("dave@example.test", "uuid-dave"))
	claudeRefresh(t, dir, cred(testNow.Add(9*time.Hour), "rt-dave")) // a /login to dave

	require.NoError(t, os.Unsetenv("CLAUDE_SECURESTORAGE_CONFIG_DIR")) // the job's environment
	r := run("--dir", dir, "heal", "--auto")
	assert.Equal(t, 1, r.code, "stdout %q stderr %q", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "CLAUDE_SECURESTORAGE_CONFIG_DIR")
	assert.Equal(t, bobBefore, mustRead(t, bob))

	t.Setenv("CLAUDE_SECURESTORAGE_CONFIG_DIR", dir) // as the refusal says
	r = run("--dir", dir, "heal", "--auto")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "new login")
	assert.Equal(t, bobBefore, mustRead(t, bob))
}
