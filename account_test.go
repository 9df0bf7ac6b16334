package credslots

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	aliceAccount = `{"accountUuid":"a-1","emailAddress":"alice@example.test","organizationUuid":"o-1"}`
	bobAccount   = `{"accountUuid":"b-2","emailAddress":"bob@example.test","organizationUuid":"o-2"}`
)

// claudeJSON is a .claude.json as Claude Code writes it, indented, with the
// given account.
func claudeJSON(account string) []byte {
	return []byte("{\n  \"numStartups\": 7,\n  \"projects\": {\"/src\": {\"history\": [\"x\"]}},\n  \"oauthAccount\": " +
		account + ",\n  \"userID\": \"u\"\n}\n")
}

// homeFixture is a creds dir at <home>/.claude with .claude.json beside it.
func homeFixture(t *testing.T, opts ...Option) (*fixture, string) {
	t.Helper()
	home := t.TempDir()
	dir := filepath.Join(home, ".claude")
	require.NoError(t, os.Mkdir(dir, 0o700))
	f := newFixture(t, append([]Option{WithCredsDir(dir)}, opts...)...)
	f.dir = dir
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	return f, filepath.Join(home, ".claude.json")
}

// learnAccounts captures alice and bob while each is active and
// .claude.json shows its account, as after a login.
func learnAccounts(t *testing.T, f *fixture, claudeJSONPath string) {
	t.Helper()
	for _, a := range []struct{ sub, account string }{{"alice", aliceAccount}, {"bob", bobAccount}} {
		f.link(t, a.sub)
		writeFile(t, claudeJSONPath, claudeJSON(a.account))
		_, err := f.m.CaptureSlotFingerprint(a.sub)
		require.NoError(t, err)
		_, acct, err := f.m.storedSidecar(a.sub)
		require.NoError(t, err)
		assert.JSONEq(t, a.account, string(acct), "%s's account remembered", a.sub)
	}
}

func TestSwitchSplicesTheAccountIntoClaudeJSON(t *testing.T) {
	f, path := homeFixture(t)
	learnAccounts(t, f, path) // .claude.json now shows bob, live -> bob

	_, err := f.m.SwitchTo("alice", "rotate")
	require.NoError(t, err)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(claudeJSON(aliceAccount)), string(got), "only oauthAccount changed, every other byte kept")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	backups, err := f.m.Backups()
	require.NoError(t, err)
	var kept []byte
	for _, b := range backups {
		if b.Of == "../.claude.json" {
			kept, err = os.ReadFile(b.Path)
			require.NoError(t, err)
		}
	}
	assert.Equal(t, `{"oauthAccount":`+bobAccount+"}\n", string(kept), "the member the splice replaced is kept as a backup generation")

	_, err = f.m.SwitchTo("bob", "rotate")
	require.NoError(t, err)
	got, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(claudeJSON(bobAccount)), string(got))
	assert.Empty(t, tempLeftovers(t, filepath.Dir(path)))
}

func TestAccountCapturedOnlyForTheActiveSub(t *testing.T) {
	f, path := homeFixture(t)
	f.link(t, "bob")
	writeFile(t, path, claudeJSON(bobAccount))
	_, err := f.m.CaptureSlotFingerprint("alice") // alice is not active: .claude.json is bob's
	require.NoError(t, err)
	_, acct, err := f.m.storedSidecar("alice")
	require.NoError(t, err)
	assert.Nil(t, acct)

	// A switch never captures: .claude.json still shows the previous account.
	_, err = f.m.SwitchTo("alice", "r")
	require.NoError(t, err)
	_, acct, err = f.m.storedSidecar("alice")
	require.NoError(t, err)
	assert.Nil(t, acct)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, claudeJSON(bobAccount), got, "nothing remembered for alice, nothing spliced")
}

func TestHealNeverCapturesTheAccount(t *testing.T) {
	// After a switch, .claude.json may show the previous account for up to
	// a day (Claude Code refetches its profile that rarely), so a heal,
	// which follows any refresh, must not take it for the healed sub.
	f, path := homeFixture(t)
	f.link(t, "alice")
	writeFile(t, path, claudeJSON(aliceAccount))
	_, err := f.m.SwitchTo("bob", "rotate") // nothing remembered: .claude.json still shows alice
	require.NoError(t, err)
	f.refreshAt(t, claudeDoc(fresh, "rt-bob-2"), time.Now().Add(time.Second))
	_, err = f.m.HealDrift()
	require.NoError(t, err)
	_, acct, err := f.m.storedSidecar("bob")
	require.NoError(t, err)
	assert.Nil(t, acct, "alice's account is never remembered for bob")
}

func TestSpliceLayoutsAndEdges(t *testing.T) {
	t.Run("CLAUDE_CONFIG_DIR keeps .claude.json inside", func(t *testing.T) {
		f := newFixture(t)
		writeSlot(t, f.slot("alice"), fresh, "rt-alice")
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		learnAccounts(t, f, filepath.Join(f.dir, ".claude.json"))
		_, err := f.m.SwitchTo("alice", "r")
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(f.dir, ".claude.json"))
		require.NoError(t, err)
		assert.Equal(t, string(claudeJSON(aliceAccount)), string(got))
	})
	t.Run("no .claude.json: none is created", func(t *testing.T) {
		f, path := homeFixture(t)
		learnAccounts(t, f, path)
		require.NoError(t, os.Remove(path))
		_, err := f.m.SwitchTo("alice", "r")
		require.NoError(t, err)
		assert.NoFileExists(t, path)
	})
	t.Run("no oauthAccount member: added last", func(t *testing.T) {
		f, path := homeFixture(t)
		learnAccounts(t, f, path)
		writeFile(t, path, []byte(`{"numStartups":7}`))
		_, err := f.m.SwitchTo("alice", "r")
		require.NoError(t, err)
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, `{"numStartups":7,"oauthAccount":`+compactString(t, aliceAccount)+`}`, string(got))
	})
	t.Run("not JSON: left alone", func(t *testing.T) {
		f, path := homeFixture(t)
		learnAccounts(t, f, path)
		writeFile(t, path, []byte(`{"numStartups":`))
		_, err := f.m.SwitchTo("alice", "r")
		require.NoError(t, err, "the switch itself succeeds")
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, `{"numStartups":`, string(got))
		assert.Contains(t, f.logs.String(), "could not splice")
	})
	t.Run("a symlink at .claude.json is not followed", func(t *testing.T) {
		f, path := homeFixture(t)
		learnAccounts(t, f, path)
		victim := filepath.Join(t.TempDir(), "victim.json")
		writeFile(t, victim, claudeJSON(bobAccount))
		require.NoError(t, os.Remove(path))
		require.NoError(t, os.Symlink(victim, path))
		_, err := f.m.SwitchTo("alice", "r")
		require.NoError(t, err)
		got, err := os.ReadFile(victim)
		require.NoError(t, err)
		assert.Equal(t, claudeJSON(bobAccount), got)
	})
	t.Run("carry state off: no capture, no splice", func(t *testing.T) {
		f, path := homeFixture(t, WithCarryState(false))
		f.link(t, "alice")
		writeFile(t, path, claudeJSON(aliceAccount))
		_, err := f.m.CaptureSlotFingerprint("alice")
		require.NoError(t, err)
		_, acct, err := f.m.storedSidecar("alice")
		require.NoError(t, err)
		assert.Nil(t, acct)
		data, err := os.ReadFile(f.m.FingerprintPath("alice"))
		require.NoError(t, err)
		assert.False(t, strings.Contains(string(data), "oauth_account"))
	})
}

func compactString(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, json.Compact(&b, []byte(s)))
	return b.String()
}

// TestAccountOfAnotherSubIsNotCaptured: after a switch, Claude Code may show
// the previous account in .claude.json for up to a day; capturing then must
// not remember it for the new sub.
func TestAccountOfAnotherSubIsNotCaptured(t *testing.T) {
	f, path := homeFixture(t)
	f.link(t, "alice")
	writeFile(t, path, claudeJSON(aliceAccount))
	_, err := f.m.CaptureSlotFingerprint("alice")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("bob", "r") // nothing remembered for bob: .claude.json still shows alice
	require.NoError(t, err)
	_, err = f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	_, acct, err := f.m.storedSidecar("bob")
	require.NoError(t, err)
	assert.Nil(t, acct, "alice's account is never remembered for bob")
	assert.Contains(t, f.logs.String(), "remembered for another sub")
}

// TestSpliceAfterClaudeJSONChangedMidSwitch: the switch looks for
// .claude.json once, when it takes the locks; should the file become a
// symlink (a dotfile manager's) or go away before the splice, the splice
// does nothing: the symlink is neither followed nor replaced, and a file
// that went away is no error.
func TestSpliceAfterClaudeJSONChangedMidSwitch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, path, victim string)
	}{
		{"made a symlink", func(t *testing.T, path, victim string) {
			require.NoError(t, os.Remove(path))
			require.NoError(t, os.Symlink(victim, path))
		}},
		{"removed", func(t *testing.T, path, _ string) { require.NoError(t, os.Remove(path)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ffs := &faultFS{inner: disk.OS{}, failAt: -1}
			f, path := homeFixture(t, withFS(ffs))
			learnAccounts(t, f, path)
			victim := filepath.Join(t.TempDir(), "dotfiles.json")
			writeFile(t, victim, claudeJSON(bobAccount))
			var done atomic.Bool
			ffs.before = func(op, name string) {
				if op == "exchange" && !done.Swap(true) {
					tc.change(t, path, victim)
				}
			}
			_, err := f.m.SwitchTo("alice", "r")
			require.NoError(t, err)
			assert.True(t, done.Load())
			assert.NotContains(t, f.logs.String(), "could not splice")
			if fi, err := os.Lstat(path); err == nil {
				assert.NotZero(t, fi.Mode()&os.ModeSymlink, "the symlink at .claude.json is still one")
			}
			got, err := os.ReadFile(victim)
			require.NoError(t, err)
			assert.Equal(t, string(claudeJSON(bobAccount)), string(got), "what the symlink named is untouched")
		})
	}
}

// TestSwitchLooksForNoClaudeJSONOutsideClaudeCode: a format that keeps no
// .claude.json never looks for one.
func TestSwitchLooksForNoClaudeJSONOutsideClaudeCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		doc  func(sub string) []byte
	}{
		{"codex", []Option{WithFormat(CodexCLI)}, func(sub string) []byte { return codexDoc(fresh, "id-"+sub) }},
		{"gemini", []Option{WithFormat(GeminiCLI)}, func(sub string) []byte { return geminiDoc(fresh, "rt-"+sub) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ffs := &faultFS{inner: disk.OS{}, failAt: -1}
			f := newFixture(t, append(tc.opts, withFS(ffs))...)
			writeFile(t, f.slot("bob"), tc.doc("bob"))
			writeFile(t, f.slot("alice"), tc.doc("alice"))
			_, err := f.m.SwitchTo("bob", "start")
			require.NoError(t, err)
			ops(ffs)
			_, err = f.m.SwitchTo("alice", "r")
			require.NoError(t, err)
			for _, op := range ops(ffs) {
				assert.NotContains(t, op, claudeJSONName)
			}
		})
	}
}
