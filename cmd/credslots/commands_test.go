package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHelpGolden pins every command's -h, and checks that help COMMAND,
// COMMAND -h and COMMAND --help print the same text.
func TestHelpGolden(t *testing.T) {
	r := run("help")
	require.Equal(t, 0, r.code)
	golden(t, filepath.Join("help", "credslots.golden"), r.stdout)
	for _, args := range [][]string{{"-h"}, {"--help"}, {"--dir", "/x", "-h"}} {
		r2 := run(args...)
		assert.Equal(t, 0, r2.code, "%v", args)
		assert.Equal(t, r.stdout, r2.stdout, "%v", args)
	}
	seen := map[string]bool{}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			r := run(c.name, "-h")
			require.Equal(t, 0, r.code, r.stderr)
			assert.Empty(t, r.stderr)
			golden(t, filepath.Join("help", c.name+".golden"), r.stdout)
			assert.NotEqual(t, globalHelp(), r.stdout, "a command's help is its own")
			assert.Contains(t, r.stdout, "usage: credslots [global flags] "+c.name)
			for _, alt := range [][]string{{"help", c.name}, {c.name, "--help"}, {c.name, "-h", "--dir", "/x"}} {
				r2 := run(alt...)
				assert.Equal(t, 0, r2.code, "%v", alt)
				assert.Equal(t, r.stdout, r2.stdout, "%v prints the same help", alt)
			}
			assert.Equal(t, r.stdout, run("--json", c.name, "-h").json(t)["help"], "--json -h prints the help as one JSON object")
			assert.False(t, seen[r.stdout], "help of %s is not another command's", c.name)
			seen[r.stdout] = true
		})
	}
	// Every flag of every command is explained in its help.
	r = run("switch", "-h")
	for _, flag := range []string{"--force", "--next", "--reason TEXT"} {
		assert.Contains(t, r.stdout, flag)
	}
	r = run("rest", "-h")
	for _, flag := range []string{"--until TIME", "--for DURATION", "--reason TEXT"} {
		assert.Contains(t, r.stdout, flag)
	}

	r = run("help", "frobnicate")
	assert.Equal(t, 2, r.code)
	r = run("--json", "help", "switch")
	assert.Equal(t, 0, r.code)
	assert.Equal(t, commandHelp(lookup("switch")), r.json(t)["help"])
}

func TestVersionGolden(t *testing.T) {
	old := version
	version = "v1.2.3-test"
	t.Cleanup(func() { version = old })
	r := run("--version")
	require.Equal(t, 0, r.code)
	golden(t, "version.golden", r.stdout)
	r2 := run("status", "--version")
	assert.Equal(t, r.stdout, r2.stdout, "--version after the command too")
	r = run("--json", "--version")
	require.Equal(t, 0, r.code)
	golden(t, "version.json.golden", r.stdout)

	version = ""
	r = run("--version")
	assert.Regexp(t, `^credslots \S+\n$`, r.stdout)
}

func TestGlobalFlagsAfterTheCommand(t *testing.T) {
	dir := credsDir(t, testNow)
	r := run("switch", "--json", "erik", "--dir", dir, "--reason", "after")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "erik", r.json(t)["sub"])

	r = run("status", "--dir", dir, "--tool", "gemini", "--subs", "x")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "(gemini)")

	// A global flag before the command is kept when the command's flags
	// are parsed.
	r = run("--tool", "gemini", "--dir", dir, "--subs", "x", "status")
	assert.Contains(t, r.stdout, "(gemini)")

	// --json after a bad flag still gives the one JSON shape.
	r = run("switch", "--bogus", "--json")
	assert.Equal(t, 2, r.code)
	assert.Equal(t, "usage", r.json(t)["error"])
	assert.Equal(t, "unknown flag --bogus", r.json(t)["reason"])

	missing := filepath.Join(dir, "missing")
	r = run("capture", "bob", "--dir", missing, "--subs", "bob", "--json")
	assert.Equal(t, 2, r.code)
	doc := r.json(t)
	assert.Equal(t, "error", doc["error"])
	assert.Contains(t, doc["reason"], "no such directory")
	assert.Contains(t, r.stderr, "no such directory")
	assert.NoDirExists(t, missing)
}

func TestMessagesAreNotDoubled(t *testing.T) {
	dir := credsDir(t, testNow)
	for _, args := range [][]string{
		{"--dir", dir, "--subs", "a/b", "status"},
		{"--dir", filepath.Join(dir, "absent"), "status"},
		{"--dir", dir, "switch", "zed"},
		{"--dir", dir, "--json", "switch", "zed"},
	} {
		r := run(args...)
		assert.NotContains(t, r.stderr, "credslots: credslots:", "%v", args)
		assert.NotContains(t, r.stdout, "credslots: ", "%v", args)
		assert.NotRegexp(t, `invalid config: .*: invalid config`, r.stderr)
		assert.NotRegexp(t, `unknown subscription: .*: unknown subscription`, r.stderr)
	}
	r := run("--dir", dir, "--subs", "a/b", "status")
	assert.Equal(t, "credslots: invalid config: subscription name \"a/b\" must not contain a path separator or NUL\n", r.stderr)
}

// Durations are written one way: whole minutes, as the library's reasons
// write them.
func TestStatusAndRefusalAgreeOnDurations(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, ".credentials.json.bob"), cred(testNow.Add(time.Hour), "rt-bob"))
	write(t, filepath.Join(dir, ".credentials.json.alice"), cred(testNow.Add(-90*time.Minute), "rt-alice"))
	require.NoError(t, os.Symlink(".credentials.json.bob", filepath.Join(dir, ".credentials.json")))
	r := run("--dir", dir, "status")
	assert.Contains(t, r.stdout, "expired 1h30m ago")
	r = run("--dir", dir, "switch", "alice")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "expired 1h30m ago")
}

// tree records every entry under dir: kind, mode, size and content hash or
// link target. Two equal trees mean nothing on disk changed.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			desc += " " + hex.EncodeToString(sum[:8]) + " " + fi.ModTime().UTC().Format(time.RFC3339Nano)
		}
		out[rel] = desc
		return nil
	}))
	return out
}

// TestEveryErrorPathJSON drives every command into its refusals and errors:
// each prints one JSON object with ok false, a stable error word and a
// reason (never a "message"), exits with the documented code, and changes
// nothing on disk.
func TestEveryErrorPathJSON(t *testing.T) {
	type tc struct {
		name  string
		setup func(t *testing.T, dir string)
		args  []string
		code  int
		word  string
	}
	drifted := func(t *testing.T, dir string) {
		live := filepath.Join(dir, ".credentials.json")
		require.NoError(t, os.Remove(live))
		write(t, live, cred(testNow.Add(9*time.Hour), "rt-someone"))
	}
	busy := func(t *testing.T, dir string) {
		write(t, filepath.Join(dir, "locks", "agent.lock"), []byte("busy"))
	}
	cases := []tc{
		// usage
		{"no command", nil, []string{}, 2, "usage"},
		{"unknown command", nil, []string{"frobnicate"}, 2, "usage"},
		{"unknown global flag", nil, []string{"--bogus", "status"}, 2, "usage"},
		{"bad tool", nil, []string{"--tool", "vim", "status"}, 2, "usage"},
		{"bad grace", nil, []string{"--grace", "soon", "status"}, 2, "usage"},
		{"negative grace", nil, []string{"status", "--grace", "-1m"}, 2, "usage"},
		{"status extra", nil, []string{"status", "extra"}, 2, "usage"},
		{"check extra", nil, []string{"check", "x"}, 2, "usage"},
		{"switch nothing", nil, []string{"switch"}, 2, "usage"},
		{"switch sub and next", nil, []string{"switch", "bob", "--next"}, 2, "usage"},
		{"switch two subs", nil, []string{"switch", "bob", "alice"}, 2, "usage"},
		{"switch bad flag", nil, []string{"switch", "bob", "--bogus"}, 2, "usage"},
		{"heal nothing", nil, []string{"heal"}, 2, "usage"},
		{"heal both", nil, []string{"heal", "bob", "--auto"}, 2, "usage"},
		{"add nothing", nil, []string{"add"}, 2, "usage"},
		{"capture nothing", nil, []string{"capture"}, 2, "usage"},
		{"rest no time", nil, []string{"rest", "bob"}, 2, "usage"},
		{"rest both", nil, []string{"rest", "bob", "--for", "1h", "--until", "2027-01-01T00:00:00Z"}, 2, "usage"},
		{"rest bad until", nil, []string{"rest", "bob", "--until", "tomorrow"}, 2, "usage"},
		{"rest past", nil, []string{"rest", "bob", "--until", "2020-01-01T00:00:00Z"}, 2, "usage"},
		{"rest negative", nil, []string{"rest", "bob", "--for", "-1h"}, 2, "usage"},
		{"rest bad duration", nil, []string{"rest", "bob", "--for", "soon"}, 2, "usage"},
		{"invalid nothing", nil, []string{"invalid"}, 2, "usage"},
		{"backups two", nil, []string{"backups", "bob", "alice"}, 2, "usage"},
		{"restore one", nil, []string{"restore", "x"}, 2, "usage"},
		{"log bad n", nil, []string{"log", "-n", "x"}, 2, "usage"},
		{"log negative n", nil, []string{"log", "-n", "-1"}, 2, "usage"},
		{"watch extra", nil, []string{"watch", "x"}, 2, "usage"},
		{"watch bad retry", nil, []string{"watch", "--retry", "0s"}, 2, "usage"},
		{"help two", nil, []string{"help", "a", "b"}, 2, "usage"},
		{"help unknown", nil, []string{"help", "frobnicate"}, 2, "usage"},
		// errors: exit 2
		{"status bad subs", nil, []string{"--subs", "a/b", "status"}, 2, "invalid_config"},
		{"add bad name", nil, []string{"add", "a/b"}, 2, "invalid_config"},
		// refusals: exit 1
		{"switch unknown", nil, []string{"switch", "zed"}, 1, "unknown_subscription"},
		{"switch expired", nil, []string{"switch", "alice", "--force"}, 1, "not_fresh"},
		{"switch missing slot", nil, []string{"--subs", "bob,zed", "switch", "zed"}, 1, "slot_missing"},
		{"switch identity drift", func(t *testing.T, dir string) { captureAll(t, dir) }, []string{"switch", "erik"}, 1, "identity_drift"},
		{"switch deferred", busy, []string{"switch", "erik", "--lock-glob", "LOCKS"}, 1, "deferred"},
		{"switch live drifted", drifted, []string{"switch", "erik"}, 1, "live_drifted"},
		{"switch invalidated", func(t *testing.T, dir string) {
			require.Equal(t, 0, run("--dir", dir, "invalid", "erik").code)
		}, []string{"switch", "erik"}, 1, "invalidated"},
		{"switch next none", nil, []string{"--subs", "bob,alice", "switch", "--next"}, 1, "no_candidate"},
		{"switch next deferred", busy, []string{"switch", "--next", "--lock-glob", "LOCKS"}, 1, "deferred"},
		{"heal no drift", nil, []string{"heal", "bob"}, 1, "no_drift"},
		{"heal unknown", nil, []string{"heal", "zed"}, 1, "unknown_subscription"},
		{"heal auto ambiguous", drifted, []string{"heal", "--auto"}, 1, "ambiguous"},
		{"heal dry run ambiguous", drifted, []string{"heal", "--auto", "--dry-run"}, 1, "ambiguous"},
		{"heal unhealable", func(t *testing.T, dir string) {
			live := filepath.Join(dir, ".credentials.json")
			require.NoError(t, os.Remove(live))
			write(t, live, []byte(`{"claudeAiOauth":{"accessToken":"","refreshToken":"","expiresAt":1767290000000}}`))
		}, []string{"heal", "bob"}, 1, "unhealable"},
		{"add no drift", nil, []string{"add", "dave"}, 1, "no_drift"},
		{"add another's login", func(t *testing.T, dir string) {
			captureAll(t, dir)
			live := filepath.Join(dir, ".credentials.json")
			require.NoError(t, os.Remove(live))
			write(t, live, cred(testNow.Add(9*time.Hour), "rt-bob"))
		}, []string{"add", "dave"}, 1, "identity_drift"},
		{"capture unknown", nil, []string{"capture", "zed"}, 1, "unknown_subscription"},
		{"capture nothing", nil, []string{"--subs", "bob,zed", "capture", "zed"}, 1, "nothing_to_capture"},
		{"rest unknown", nil, []string{"rest", "zed", "--for", "1h"}, 1, "unknown_subscription"},
		{"invalid unknown", nil, []string{"invalid", "zed"}, 1, "unknown_subscription"},
		{"backups unknown", nil, []string{"backups", "zed"}, 1, "unknown_subscription"},
		{"restore into a new sub, no backup", nil, []string{"restore", ".credentials.json.bob.prev", "zed"}, 1, "no_such_backup"},
		{"restore another's login into a new sub", func(t *testing.T, dir string) {
			captureAll(t, dir)
			write(t, filepath.Join(dir, ".credentials.json.erik.prev"), cred(testNow.Add(time.Hour), "rt-bob"))
		}, []string{"restore", ".credentials.json.erik.prev", "zed"}, 1, "identity_drift"},
		{"restore no backup", nil, []string{"restore", ".credentials.json.bob.prev", "bob"}, 1, "no_such_backup"},
		{"restore another's login", func(t *testing.T, dir string) {
			captureAll(t, dir)
			write(t, filepath.Join(dir, ".credentials.json.erik.prev"), cred(testNow.Add(time.Hour), "rt-bob"))
		}, []string{"restore", ".credentials.json.erik.prev", "erik"}, 1, "identity_drift"},
		{"restore not a credential", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, ".credentials.json.erik.prev"), []byte("not json"))
		}, []string{"restore", ".credentials.json.erik.prev", "erik"}, 1, "unhealable"},
		{"heal too large", func(t *testing.T, dir string) {
			live := filepath.Join(dir, ".credentials.json")
			require.NoError(t, os.Remove(live))
			write(t, live, []byte(strings.Repeat(" ", 1<<20+1)))
		}, []string{"heal", "bob"}, 1, "too_large"},
		{"switch too large", func(t *testing.T, dir string) {
			live := filepath.Join(dir, ".credentials.json")
			require.NoError(t, os.Remove(live))
			write(t, live, []byte(strings.Repeat(" ", 1<<20+1)))
		}, []string{"switch", "erik"}, 1, "too_large"},
		// errors on a dir that does not exist: exit 2, for every command
		{"status missing dir", nil, []string{"status", "--dir", "MISSING"}, 2, "error"},
		{"check missing dir", nil, []string{"check", "--dir", "MISSING"}, 2, "error"},
		{"switch missing dir", nil, []string{"switch", "bob", "--dir", "MISSING"}, 2, "error"},
		{"heal missing dir", nil, []string{"heal", "--auto", "--dir", "MISSING"}, 2, "error"},
		{"add missing dir", nil, []string{"add", "bob", "--dir", "MISSING"}, 2, "error"},
		{"capture missing dir", nil, []string{"capture", "bob", "--dir", "MISSING", "--subs", "bob"}, 2, "error"},
		{"rest missing dir", nil, []string{"rest", "bob", "--for", "1h", "--dir", "MISSING"}, 2, "error"},
		{"invalid missing dir", nil, []string{"invalid", "bob", "--dir", "MISSING"}, 2, "error"},
		{"backups missing dir", nil, []string{"backups", "--dir", "MISSING"}, 2, "error"},
		{"restore missing dir", nil, []string{"restore", "x", "bob", "--dir", "MISSING"}, 2, "error"},
		{"log missing dir", nil, []string{"log", "--dir", "MISSING"}, 2, "error"},
		{"watch missing dir", nil, []string{"watch", "--dir", "MISSING"}, 2, "error"},
		{"no slots", func(t *testing.T, dir string) {
			for _, s := range []string{"bob", "alice", "erik"} {
				require.NoError(t, os.Remove(filepath.Join(dir, ".credentials.json."+s)))
			}
		}, []string{"status"}, 2, "error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := credsDir(t, testNow)
			if c.setup != nil {
				c.setup(t, dir)
			}
			args := []string{"--dir", dir, "--json"}
			for _, a := range c.args {
				a = strings.ReplaceAll(a, "LOCKS", filepath.Join(dir, "locks", "*.lock"))
				a = strings.ReplaceAll(a, "MISSING", filepath.Join(dir, "missing"))
				args = append(args, a)
			}
			before := tree(t, dir)
			r := run(args...)
			assert.Equal(t, c.code, r.code, "stdout %s\nstderr %s", r.stdout, r.stderr)
			doc := r.json(t)
			assert.Equal(t, false, doc["ok"])
			assert.Equal(t, c.word, doc["error"])
			assert.NotEmpty(t, doc["reason"])
			assert.NotContains(t, doc, "message", "one shape: error and reason")
			assert.NotContains(t, doc["reason"], "credslots: ")
			assert.NotEmpty(t, r.stderr, "a message on stderr too")
			assert.NotContains(t, r.stderr, "credslots: credslots:")
			assert.NotContains(t, r.stdout+r.stderr, "rt-", "no token material")
			assert.Equal(t, before, tree(t, dir), "nothing on disk changed")
		})
	}
}

func TestSwitchNextRestInvalid(t *testing.T) {
	dir := credsDir(t, testNow)
	r := run("--dir", dir, "--json", "switch", "--next", "--reason", "bob quota")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "erik", r.json(t)["sub"], "alice is expired: erik is the only other usable sub")

	r = run("--dir", dir, "--json", "rest", "erik", "--for", "90m", "--reason", "429 from the API")
	require.Equal(t, 0, r.code, r.stderr)
	doc := r.json(t)
	assert.Equal(t, true, doc["ok"])
	assert.Equal(t, "2026-01-01T13:30:00Z", doc["until"])
	assert.Contains(t, doc["reason"], "(1h30m)")

	r = run("--dir", dir, "status")
	assert.Contains(t, r.stdout, "resting in 1h30m (until 2026-01-01T13:30:00Z)")

	r = run("--dir", dir, "switch", "--next")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "switched to bob\n", r.stdout)

	before := tree(t, dir)
	r = run("--dir", dir, "--json", "switch", "--next")
	assert.Equal(t, 1, r.code, "erik rests, alice is expired")
	doc = r.json(t)
	assert.Equal(t, "no_candidate", doc["error"])
	assert.Len(t, doc["candidates"], 3)
	assert.Equal(t, before, tree(t, dir))

	r = run("--dir", dir, "rest", "erik", "--until", "2026-01-01T12:30:00+00:00")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "erik rests until 2026-01-01T12:30:00Z (30m)")

	r = run("--dir", dir, "invalid", "erik", "--reason", "401")
	require.Equal(t, 0, r.code, r.stderr)
	r = run("--dir", dir, "status")
	assert.Regexp(t, `erik .* invalid`, r.stdout)
	r = run("--dir", dir, "--json", "switch", "erik")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "invalidated", r.json(t)["error"])

	r = run("--dir", dir, "log")
	assert.Contains(t, r.stdout, "rest")
	assert.Contains(t, r.stdout, "invalid")
}

func TestAddBackupsRestore(t *testing.T) {
	dir := credsDir(t, testNow)
	live := filepath.Join(dir, ".credentials.json")
	// A /login as dave: the live symlink is replaced by a new file.
	require.NoError(t, os.Remove(live))
	login := cred(testNow.Add(8*time.Hour), "rt-dave")
	write(t, live, login)

	r := run("--dir", dir, "--json", "add", "dave")
	require.Equal(t, 0, r.code, r.stderr)
	doc := r.json(t)
	assert.Equal(t, "add", doc["action"])
	assert.Equal(t, "dave", doc["sub"])
	assert.Equal(t, string(login), mustRead(t, filepath.Join(dir, ".credentials.json.dave")))
	target, err := os.Readlink(live)
	require.NoError(t, err)
	assert.Equal(t, ".credentials.json.dave", target)
	assert.FileExists(t, filepath.Join(dir, ".credentials.json.dave.fingerprint.json"))

	r = run("--dir", dir, "status")
	assert.Contains(t, r.stdout, "* dave")

	// The CLI refreshes dave twice; each heal keeps the previous slot.
	for i, rt := range []string{"rt-dave-2", "rt-dave-3"} {
		time.Sleep(20 * time.Millisecond)
		require.NoError(t, os.Remove(live))
		write(t, live, cred(testNow.Add(time.Duration(9+i)*time.Hour), rt))
		later := time.Now().Add(time.Duration(i+1) * time.Second)
		require.NoError(t, os.Chtimes(live, later, later))
		r = run("--dir", dir, "heal", "dave")
		require.Equal(t, 0, r.code, r.stderr)
	}

	r = run("--dir", dir, "--json", "backups", "dave")
	require.Equal(t, 0, r.code, r.stderr)
	backups := r.json(t)["backups"].([]any)
	require.NotEmpty(t, backups)
	newest := backups[0].(map[string]any)
	assert.Equal(t, ".credentials.json.dave.prev", newest["name"])
	assert.Equal(t, "dave", newest["sub"])
	assert.Len(t, newest["fingerprint"], 64)

	r = run("--dir", dir, "backups")
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "BACKUP")
	assert.Contains(t, r.stdout, ".credentials.json.dave.prev")
	assert.NotContains(t, r.stdout, "rt-")

	r = run("--dir", dir, "--json", "backups", "bob")
	require.Equal(t, 0, r.code)
	assert.Equal(t, []any{}, r.json(t)["backups"])
	r = run("--dir", dir, "backups", "bob")
	assert.Equal(t, "no backups\n", r.stdout)

	prev := mustRead(t, filepath.Join(dir, ".credentials.json.dave.prev"))
	r = run("--dir", dir, "--json", "restore", ".credentials.json.dave.prev", "dave")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "restore", r.json(t)["action"])
	assert.Equal(t, prev, mustRead(t, filepath.Join(dir, ".credentials.json.dave")))
}

func TestEveryCommandIsDocumented(t *testing.T) {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
		assert.NotEmpty(t, c.summary)
		assert.NotEmpty(t, c.about)
		assert.NotEmpty(t, c.exit)
	}
	assert.Subset(t, names, []string{"init", "status", "check", "switch", "heal", "add", "remove", "capture", "rest", "invalid",
		"observe", "backups", "restore", "log", "watch", "run", "leases", "help"})
	assert.Equal(t, "init", names[0], "the way in comes first")
}
