//go:build unix

package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A seat's Claude Code keeps its config dir at home (only its credentials
// are in the seat), so it writes its own account into the .claude.json
// home shares. That account, of a sub leased since the last change, is no
// evidence about home's live file: bob's refresh at home is healed into
// bob, and a heal into alice is refused, not advised.
func TestAnAccountASeatWroteIsNoEvidenceAboutHome(t *testing.T) {
	dir, claudeJSON := homeWithAccounts(t)
	t.Setenv("HOME", filepath.Dir(dir))
	t.Setenv("NEWSTATE", string(claudeState("alice@example.test", "uuid-alice")))
	r := run("--dir", dir, "run", "--sub", "alice", "--", "sh", "-c",
		`printf '%s' "$NEWSTATE" > "$HOME/.claude.json.tmp" && mv "$HOME/.claude.json.tmp" "$HOME/.claude.json"`)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, mustRead(t, claudeJSON), "alice@example.test", "the seat's CLI wrote its account")
	aliceBefore := mustRead(t, filepath.Join(dir, ".credentials.json.alice"))
	time.Sleep(20 * time.Millisecond)
	claudeRefresh(t, dir, cred(testNow.Add(9*time.Hour), "rt-bob-2")) // home: bob's refresh

	named := run("--dir", dir, "heal", "alice")
	assert.Equal(t, 1, named.code, "stdout %q stderr %q", named.stdout, named.stderr)
	auto := run("--dir", dir, "heal", "--auto")
	require.Equal(t, 0, auto.code, "stdout %q stderr %q", auto.stdout, auto.stderr)
	assert.Contains(t, mustRead(t, filepath.Join(dir, ".credentials.json.bob")), "rt-bob-2", "bob's refresh is bob's")
	assert.Equal(t, aliceBefore, mustRead(t, filepath.Join(dir, ".credentials.json.alice")), "alice's slot keeps alice's login")
}
