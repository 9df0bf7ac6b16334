package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// throughLinkTool is a CLI whose login writes through the live symlink,
// over the slot it points at (CLIENTS.md): its file names, a login of
// account, and the way its login writes when the live path is a link.
type throughLinkTool struct {
	name, live, slot string
	doc              func(account string) []byte
	login            func(t *testing.T, dir string, doc []byte)
}

func throughLinkTools() []throughLinkTool {
	return []throughLinkTool{
		{"codex", "auth.json", "auth.json.", func(account string) []byte {
			enc := base64.RawURLEncoding
			jwt := enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
				enc.EncodeToString([]byte(fmt.Sprintf(`{"exp":%d,"sub":"u"}`, testNow.Add(7*24*time.Hour).Unix()))) + ".sig"
			return []byte(fmt.Sprintf(`{"OPENAI_API_KEY":null,"tokens":{"id_token":"x","access_token":%q,"refresh_token":"rt-%s","account_id":%q}}`, jwt, account, account))
		}, func(t *testing.T, dir string, doc []byte) {
			// Codex CLI: .auth-XXXXXX renamed onto the resolved path.
			target := filepath.Join(dir, "auth.json")
			if resolved, err := filepath.EvalSymlinks(target); err == nil {
				target = resolved
			}
			tmp := filepath.Join(dir, ".auth-A1B2C3")
			require.NoError(t, os.WriteFile(tmp, doc, 0o600))
			require.NoError(t, os.Rename(tmp, target))
		}},
		{"gemini", "oauth_creds.json", "oauth_creds.json.", func(account string) []byte {
			return []byte(fmt.Sprintf(`{"access_token":"ya29.%s","refresh_token":"rt-%s","token_type":"Bearer","expiry_date":%d}`,
				account, account, testNow.Add(7*time.Hour).UnixMilli()))
		}, func(t *testing.T, dir string, doc []byte) {
			// Gemini CLI: open with truncate through the link, write.
			require.NoError(t, os.WriteFile(filepath.Join(dir, "oauth_creds.json"), doc, 0o600))
		}},
	}
}

// initWork is a creds dir of tool set up by init from its one login, work.
func initWork(t *testing.T, tool throughLinkTool) (dir string, r result) {
	t.Helper()
	dir = t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o700))
	write(t, filepath.Join(dir, tool.live), tool.doc("work"))
	r = run("--tool", tool.name, "--dir", dir, "init", "work")
	require.Equal(t, 0, r.code, r.stderr)
	return dir, r
}

// For Codex CLI and Gemini CLI a login through the live link overwrites
// the slot it points at: the step init names after setting up says to
// remove the link first, and following it keeps both logins.
func TestInitSaysToRemoveTheLinkBeforeALoginThatWritesThroughIt(t *testing.T) {
	for _, tool := range throughLinkTools() {
		t.Run(tool.name, func(t *testing.T) {
			dir, r := initWork(t, tool)
			live := filepath.Join(dir, tool.live)
			assert.Contains(t, r.stdout, "rm "+live)

			require.NoError(t, os.Remove(live)) // as the step says
			tool.login(t, dir, tool.doc("home"))
			r = run("--tool", tool.name, "--dir", dir, "add", "home")
			require.Equal(t, 0, r.code, "stdout %q stderr %q", r.stdout, r.stderr)
			assert.Contains(t, mustRead(t, filepath.Join(dir, tool.slot+"work")), "rt-work", "work keeps its login")
			assert.Contains(t, mustRead(t, filepath.Join(dir, tool.slot+"home")), "rt-home")
			target, err := os.Readlink(live)
			require.NoError(t, err)
			assert.Equal(t, tool.slot+"home", target)

			st := run("--tool", tool.name, "--dir", dir, "status")
			assert.NotContains(t, st.stdout+st.stderr, "only sub")
		})
	}
}

// A login that wrote through the link anyway left the slot holding another
// account's login: add says so, and how to keep it as a sub of its own,
// rather than repeat the step that overwrote the slot.
func TestAddExplainsALoginThatWroteThroughTheLink(t *testing.T) {
	for _, tool := range throughLinkTools() {
		t.Run(tool.name, func(t *testing.T) {
			dir, _ := initWork(t, tool)
			tool.login(t, dir, tool.doc("home"))
			slot := filepath.Join(dir, tool.slot+"work")
			before := mustRead(t, slot)
			// status and check say so too, and what to do: not a capture
			// of the other account's login as work's.
			for _, cmd := range []string{"status", "check"} {
				st := run("--tool", tool.name, "--dir", dir, cmd)
				assert.Contains(t, st.stdout, "a login wrote through the live link, over work's own", cmd)
				assert.Contains(t, st.stdout, "rm "+filepath.Join(dir, tool.live)+"; mv "+slot+" "+filepath.Join(dir, tool.live), cmd)
				assert.NotContains(t, st.stdout, "verify the login, then credslots capture work", cmd)
			}
			r := run("--tool", tool.name, "--dir", dir, "add", "home")
			assert.Equal(t, 1, r.code, "stdout %q stderr %q", r.stdout, r.stderr)
			assert.Contains(t, r.stderr, "wrote through the live link")
			assert.NotContains(t, r.stderr, "log in to the other account")
			assert.Equal(t, before, mustRead(t, slot), "nothing changed")

			// The way out it names keeps the new login as home.
			live := filepath.Join(dir, tool.live)
			require.Contains(t, r.stderr, "rm "+live+"; mv "+slot+" "+live)
			require.NoError(t, os.Remove(live))
			require.NoError(t, os.Rename(slot, live))
			r = run("--tool", tool.name, "--dir", dir, "add", "home")
			require.Equal(t, 0, r.code, "stdout %q stderr %q", r.stdout, r.stderr)
			assert.Equal(t, before, mustRead(t, filepath.Join(dir, tool.slot+"home")))

			// And work's login again, as the refusal said, link removed first.
			require.NoError(t, os.Remove(live))
			tool.login(t, dir, tool.doc("work2"))
			r = run("--tool", tool.name, "--dir", dir, "add", "work", "--force")
			require.Equal(t, 0, r.code, "stdout %q stderr %q", r.stdout, r.stderr)
			assert.Contains(t, mustRead(t, filepath.Join(dir, tool.slot+"work")), "rt-work2")
			assert.Equal(t, before, mustRead(t, filepath.Join(dir, tool.slot+"home")), "home keeps its login")
		})
	}
}

// With one sub only, status's advice for Codex CLI and Gemini CLI names the
// link's removal too.
func TestStatusOfTheOnlySubSaysToRemoveTheLinkFirst(t *testing.T) {
	for _, tool := range throughLinkTools() {
		t.Run(tool.name, func(t *testing.T) {
			dir, _ := initWork(t, tool)
			r := run("--tool", tool.name, "--dir", dir, "status")
			assert.Contains(t, r.stdout+r.stderr, "rm "+filepath.Join(dir, tool.live))
		})
	}
}

// Codex CLI, live link removed first, then a login: the live file holds an
// account no slot has. status and a switch call it a new login to add, not
// a refresh to heal (a heal refuses it); a refresh of the active account
// is still a heal.
func TestANewCodexAccountIsAnAddNotAHeal(t *testing.T) {
	tool := throughLinkTools()[0]
	dir, _ := initWork(t, tool)
	live := filepath.Join(dir, tool.live)
	require.NoError(t, os.Remove(live))
	tool.login(t, dir, tool.doc("home"))
	r := run("--tool", tool.name, "--dir", dir, "add", "home")
	require.Equal(t, 0, r.code, r.stderr)

	require.NoError(t, os.Remove(live))
	tool.login(t, dir, tool.doc("carol"))
	for _, cmd := range []string{"status", "check"} {
		st := run("--tool", tool.name, "--dir", dir, cmd)
		assert.Contains(t, st.stdout, "the live file holds a new login (its tokens.account_id is no slot's): file it under a sub of its own (credslots add NAME)", cmd)
		assert.NotContains(t, st.stdout, "heal it into the slot that was active", cmd)
	}
	r = run("--tool", tool.name, "--dir", dir, "switch", "work")
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Contains(t, r.stderr, "holds a new login")
	assert.NotContains(t, r.stderr, "heal it into its slot first")
	r = run("--tool", tool.name, "--dir", dir, "add", "carol")
	require.Equal(t, 0, r.code, r.stderr)

	// A refresh of carol's login, the link replaced by a file: a heal.
	require.NoError(t, os.Remove(live))
	write(t, live, []byte(strings.Replace(string(tool.doc("carol")), "rt-carol", "rt-carol-2", 1)))
	st := run("--tool", tool.name, "--dir", dir, "status")
	assert.Contains(t, st.stdout, "heal it into the slot that was active")
	assert.NotContains(t, st.stdout, "holds a new login")
}
