package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gptme/credslots"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// binary is the command built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "credslots-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "credslots")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var testNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func cred(expiry time.Time, refreshToken string) []byte {
	return []byte(fmt.Sprintf(`{"claudeAiOauth":{"accessToken":"at-%s","refreshToken":%q,"expiresAt":%d}}`,
		refreshToken, refreshToken, expiry.UnixMilli()))
}

// codexCred is a Codex CLI login whose access token expires at exp.
func codexCred(exp time.Time) []byte {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"exp":` + strconv.FormatInt(exp.Unix(), 10) + `}`))
	return []byte(`{"tokens":{"access_token":"eyJhbGciOiJub25lIn0.` + payload + `.c2ln","refresh_token":"rt-a","account_id":"acct-a"}}`)
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// credsDir builds bob (fresh, active), alice (expired) and erik (fresh, but
// its identity drifted after capture) relative to now.
func credsDir(t *testing.T, now time.Time) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o700))
	write(t, filepath.Join(dir, ".credentials.json.bob"), cred(now.Add(7*time.Hour+12*time.Minute), "rt-bob"))
	write(t, filepath.Join(dir, ".credentials.json.alice"), cred(now.Add(-3*time.Hour), "rt-alice"))
	write(t, filepath.Join(dir, ".credentials.json.erik"), cred(now.Add(30*time.Hour), "rt-erik"))
	require.NoError(t, os.Symlink(".credentials.json.bob", filepath.Join(dir, ".credentials.json")))
	return dir
}

// result is what one invocation printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) json(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc), "stdout is one JSON object: %q", r.stdout)
	return doc
}

// run invokes the command in process with the clock at testNow.
func run(args ...string) result {
	var out, errOut bytes.Buffer
	a := &app{now: func() time.Time { return testNow }, stdout: &out, stderr: &errOut}
	code := a.run(args)
	return result{code, out.String(), errOut.String()}
}

// captureAll records every slot's identity, then replaces erik's login.
func captureAll(t *testing.T, dir string) {
	t.Helper()
	for _, sub := range []string{"bob", "alice", "erik"} {
		r := run("--dir", dir, "capture", sub)
		require.Equal(t, 0, r.code, r.stderr)
	}
	write(t, filepath.Join(dir, ".credentials.json.erik"), cred(testNow.Add(30*time.Hour), "rt-erik-relogin"))
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	assert.Equal(t, string(want), got)
}

func TestStatusGolden(t *testing.T) {
	dir := credsDir(t, testNow)
	captureAll(t, dir)

	r := run("--dir", dir, "status")
	require.Equal(t, 0, r.code, r.stderr)
	golden(t, "status.golden", strings.ReplaceAll(r.stdout, dir, "$DIR"))

	r = run("--dir", dir, "--json", "status")
	require.Equal(t, 0, r.code, r.stderr)
	golden(t, "status.json.golden", strings.ReplaceAll(r.stdout, dir, "$DIR"))
	doc := r.json(t)
	assert.Equal(t, false, doc["healthy"])
	assert.Equal(t, "bob", doc["active"])
	assert.NotContains(t, r.stdout, "rt-", "no token material")
}

func TestStatusHealthyTable(t *testing.T) {
	dir := credsDir(t, testNow)
	r := run("--dir", dir, "--subs", "bob,erik", "status")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "* bob")
	assert.Contains(t, r.stdout, "in 7h12m")
	assert.Contains(t, r.stdout, "healthy: no problems")
}

func TestCheckExitCodes(t *testing.T) {
	dir := credsDir(t, testNow)
	r := run("--dir", dir, "--subs", "bob,erik", "check")
	assert.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "healthy")

	r = run("--dir", dir, "check") // alice is expired but not active: still healthy
	assert.Equal(t, 0, r.code, r.stdout)

	require.NoError(t, os.Chmod(filepath.Join(dir, ".credentials.json.erik"), 0o644))
	r = run("--dir", dir, "check")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stdout, "readable by group or others")

	r = run("--dir", dir, "--json", "check")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, false, r.json(t)["healthy"])

	r = run("--dir", filepath.Join(dir, "absent"), "check")
	assert.Equal(t, 2, r.code)
	r = run("--dir", filepath.Join(dir, "absent"), "--json", "status")
	assert.Equal(t, 2, r.code)
	assert.Equal(t, "error", r.json(t)["error"])
}

func TestSwitchExitCodesAndLog(t *testing.T) {
	dir := credsDir(t, testNow)
	r := run("--dir", dir, "switch", "erik", "--reason", "bob quota exhausted")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "switched to erik\n", r.stdout)
	target, err := os.Readlink(filepath.Join(dir, ".credentials.json"))
	require.NoError(t, err)
	assert.Equal(t, ".credentials.json.erik", target)

	r = run("--dir", dir, "--json", "switch", "alice")
	assert.Equal(t, 1, r.code)
	doc := r.json(t)
	assert.Equal(t, "not_fresh", doc["error"])
	assert.Equal(t, false, doc["ok"])
	assert.Contains(t, r.stderr, "refused")

	r = run("--dir", dir, "--json", "switch", "alice", "--force")
	assert.Equal(t, 1, r.code, "freshness is never overridden")

	r = run("--dir", dir, "--json", "switch", "zed")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "unknown_subscription", r.json(t)["error"])

	locks := t.TempDir()
	write(t, filepath.Join(locks, "agent-1.lock"), []byte("busy"))
	r = run("--dir", dir, "--lock-glob", filepath.Join(locks, "*.lock"), "--json", "switch", "bob")
	assert.Equal(t, 1, r.code)
	doc = r.json(t)
	assert.Equal(t, "deferred", doc["error"])
	assert.Equal(t, []any{"agent-1"}, doc["deferred_locks"])
	r = run("--dir", dir, "--lock-glob", filepath.Join(locks, "*.lock"), "--json", "switch", "--force", "bob")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, true, r.json(t)["ok"])

	// An I/O failure is exit 2: the live path is a directory.
	require.NoError(t, os.Remove(filepath.Join(dir, ".credentials.json")))
	require.NoError(t, os.Mkdir(filepath.Join(dir, ".credentials.json"), 0o700))
	r = run("--dir", dir, "--json", "switch", "bob")
	assert.Equal(t, 2, r.code)
	assert.Equal(t, "error", r.json(t)["error"])

	journal := filepath.Join(dir, ".credslots", "journal.jsonl")
	fi, err := os.Stat(journal)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	r = run("--dir", dir, "--json", "log")
	require.Equal(t, 0, r.code)
	entries := r.json(t)["entries"].([]any)
	require.Len(t, entries, 4, "an intent and a done record for each switch made; refusals change nothing")
	first := entries[0].(map[string]any)
	assert.Equal(t, "2026-01-01T12:00:00Z", first["time"])
	assert.Equal(t, "switch", first["op"])
	assert.Equal(t, "intent", first["phase"])
	assert.Equal(t, "erik", first["sub"])
	assert.Equal(t, "bob", first["from"])
	assert.Equal(t, "bob quota exhausted", first["reason"])
	assert.Equal(t, first["id"], entries[1].(map[string]any)["id"])
	assert.Equal(t, "done", entries[1].(map[string]any)["phase"])

	r = run("--dir", dir, "log", "-n", "1")
	require.Equal(t, 0, r.code)
	assert.Equal(t, 1, strings.Count(r.stdout, "\n"))
	assert.Contains(t, r.stdout, "switch  done  bob")
}

func TestLogEscapesWhatItPrints(t *testing.T) {
	dir := credsDir(t, testNow)
	r := run("--dir", dir, "switch", "erik", "--reason", "evil\x1b]0;pwned\x07\nreason")
	require.Equal(t, 0, r.code, r.stderr)
	r = run("--dir", dir, "log")
	require.Equal(t, 0, r.code)
	assert.NotContains(t, r.stdout, "\x1b")
	assert.NotContains(t, r.stdout, "\x07")
	assert.Contains(t, r.stdout, `evil\x1b]0;pwned\a\nreason`)
	assert.Equal(t, 2, strings.Count(r.stdout, "\n"), "one line a record")
}

func TestHealAutoPicksLastSwitchedSub(t *testing.T) {
	dir := credsDir(t, testNow)
	require.Equal(t, 0, run("--dir", dir, "switch", "erik").code)
	require.Equal(t, 0, run("--dir", dir, "switch", "bob").code)
	// The CLI refreshes: a regular file replaces the symlink, later.
	live := filepath.Join(dir, ".credentials.json")
	require.NoError(t, os.Remove(live))
	refreshed := cred(testNow.Add(8*time.Hour), "rt-bob-2")
	write(t, live, refreshed)
	later := time.Now().Add(time.Second)
	require.NoError(t, os.Chtimes(live, later, later))

	r := run("--dir", dir, "--json", "heal", "--auto", "--dry-run")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.json(t)["reason"], "dry run, nothing changed")
	assert.Equal(t, false, r.json(t)["changed"])
	assert.Equal(t, "bob", r.json(t)["sub"])
	fi, err := os.Lstat(live)
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular(), "dry run changed nothing")
	leftovers, _ := filepath.Glob(filepath.Join(dir, "*dryrun*"))
	assert.Empty(t, leftovers)

	r = run("--dir", dir, "heal", "--auto")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "the journal says bob was active last")
	assert.Equal(t, "healed: synced live → .credentials.json.bob, symlink restored\n", r.stdout)
	slot, err := os.ReadFile(filepath.Join(dir, ".credentials.json.bob"))
	require.NoError(t, err)
	assert.Equal(t, refreshed, slot)

	r = run("--dir", dir, "--json", "heal", "bob")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "no_drift", r.json(t)["error"])

	r = run("--dir", dir, "--json", "log")
	require.Equal(t, 0, r.code)
	entries := r.json(t)["entries"].([]any)
	require.Len(t, entries, 6)
	last := entries[5].(map[string]any)
	assert.Equal(t, "heal", last["op"])
	assert.Equal(t, "done", last["phase"])
	assert.Equal(t, "bob", last["sub"])
	assert.Equal(t, "auto-heal drift (live cred resynced to slot)", last["reason"])
}

func TestHealAutoAfterLibrarySwitches(t *testing.T) {
	dir := credsDir(t, testNow)
	m, err := credslots.New(credslots.WithCredsDir(dir), credslots.WithSubscriptions("bob", "alice", "erik"),
		credslots.WithClock(func() time.Time { return testNow }))
	require.NoError(t, err)
	_, err = m.SwitchTo("erik", "by the library")
	require.NoError(t, err)
	live := filepath.Join(dir, ".credentials.json")
	require.NoError(t, os.Remove(live))
	refreshed := cred(testNow.Add(31*time.Hour), "rt-erik-2")
	write(t, live, refreshed)
	later := time.Now().Add(time.Second)
	require.NoError(t, os.Chtimes(live, later, later))

	r := run("--dir", dir, "--json", "heal", "--auto")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "erik", r.json(t)["sub"])
	slot, err := os.ReadFile(filepath.Join(dir, ".credentials.json.erik"))
	require.NoError(t, err)
	assert.Equal(t, refreshed, slot)
}

func TestHealAutoMigratesTheOldSwitchLog(t *testing.T) {
	dir := credsDir(t, testNow)
	write(t, filepath.Join(dir, ".credslots-switches.jsonl"),
		[]byte(`{"time":"2026-01-01T10:00:00Z","action":"switch","sub":"erik","reason":"old"}`+"\n"))
	live := filepath.Join(dir, ".credentials.json")
	require.NoError(t, os.Remove(live))
	write(t, live, cred(testNow.Add(31*time.Hour), "rt-erik-2"))

	r := run("--dir", dir, "--json", "heal", "--auto")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "erik", r.json(t)["sub"])
	assert.NoFileExists(t, filepath.Join(dir, ".credslots-switches.jsonl"), "read once and migrated")
	r = run("--dir", dir, "--json", "log")
	entries := r.json(t)["entries"].([]any)
	require.Len(t, entries, 3)
	assert.Equal(t, true, entries[0].(map[string]any)["migrated"])
}

func TestHealAutoRefusesWhenUnsure(t *testing.T) {
	dir := credsDir(t, testNow)
	live := filepath.Join(dir, ".credentials.json")
	require.NoError(t, os.Remove(live))
	write(t, live, cred(testNow.Add(9*time.Hour), "rt-someone"))
	before, err := os.ReadFile(live)
	require.NoError(t, err)

	r := run("--dir", dir, "--json", "heal", "--auto")
	assert.Equal(t, 1, r.code, "no change recorded: refused, not guessed")
	doc := r.json(t)
	assert.Equal(t, "ambiguous", doc["error"])
	assert.Contains(t, doc["reason"], "no completed switch or heal")
	after, err := os.ReadFile(live)
	require.NoError(t, err)
	assert.Equal(t, before, after)
	for _, sub := range []string{"bob", "alice", "erik"} {
		assert.NotContains(t, mustRead(t, filepath.Join(dir, ".credentials.json."+sub)), "rt-someone")
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}

func TestNoCLILocksAndBusyProc(t *testing.T) {
	dir := credsDir(t, testNow)
	// A fresh Claude Code refresh lock: with --no-cli-locks the switch
	// neither waits for it nor touches it.
	lock := filepath.Join(dir, ".oauth_refresh.lock")
	require.NoError(t, os.Mkdir(lock, 0o700))
	r := run("--dir", dir, "--no-cli-locks", "switch", "erik")
	require.Equal(t, 0, r.code, r.stderr)
	assert.DirExists(t, lock)
	require.NoError(t, os.Remove(lock))

	if runtime.GOOS != "linux" {
		return
	}
	// --busy-proc defers while a process of that name runs.
	exe := filepath.Join(t.TempDir(), "fake-codex-proc")
	sleep, err := exec.LookPath("sleep")
	require.NoError(t, err)
	data, err := os.ReadFile(sleep)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(exe, data, 0o700))
	proc := exec.Command(exe, "30")
	require.NoError(t, proc.Start())
	t.Cleanup(func() { _ = proc.Process.Kill(); _ = proc.Wait() })
	r = run("--dir", dir, "--busy-proc", "fake-codex-proc", "--json", "switch", "bob")
	assert.Equal(t, 1, r.code)
	doc := r.json(t)
	assert.Equal(t, "deferred", doc["error"])
	assert.Equal(t, []any{fmt.Sprintf("fake-codex-proc (pid %d)", proc.Process.Pid)}, doc["deferred_locks"])
	require.NoError(t, proc.Process.Kill())
	_ = proc.Wait()
	r = run("--dir", dir, "--busy-proc", "fake-codex-proc", "switch", "bob")
	assert.Equal(t, 0, r.code, r.stderr)
}

func TestHealRefusalsAndErrors(t *testing.T) {
	dir := credsDir(t, testNow)
	r := run("--dir", dir, "--json", "heal", "--auto")
	assert.Equal(t, 1, r.code, "nothing drifted")
	assert.Equal(t, "no_drift", r.json(t)["error"])

	live := filepath.Join(dir, ".credentials.json")
	require.NoError(t, os.Remove(live))
	write(t, live, []byte(`{"claudeAiOauth":{"accessToken":"","refreshToken":"","expiresAt":1767290000000}}`))
	r = run("--dir", dir, "--json", "heal", "bob")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "unhealable", r.json(t)["error"])

	r = run("--dir", dir, "heal", "bob", "--auto")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "usage:")
}

func TestCaptureExitCodes(t *testing.T) {
	dir := credsDir(t, testNow)
	r := run("--dir", dir, "--json", "capture", "bob")
	require.Equal(t, 0, r.code, r.stderr)
	doc := r.json(t)
	assert.Equal(t, true, doc["ok"])
	assert.Len(t, doc["fingerprint"], 64)

	r = run("--dir", dir, "capture", "bob")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "captured bob")

	r = run("--dir", dir, "--subs", "bob,zed", "--json", "capture", "zed")
	assert.Equal(t, 1, r.code, "nothing to capture")
	assert.Equal(t, "nothing_to_capture", r.json(t)["error"])

	r = run("--dir", dir, "--json", "capture", "zed")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "unknown_subscription", r.json(t)["error"])

	r = run("--dir", dir, "--subs", "a/b", "--json", "capture", "bob")
	assert.Equal(t, 2, r.code)
	assert.Equal(t, "invalid_config", r.json(t)["error"])
}

func TestUsageErrors(t *testing.T) {
	dir := credsDir(t, testNow)
	tests := [][]string{
		{},
		{"--dir", dir},
		{"--bogus", "status"},
		{"--dir", dir, "frobnicate"},
		{"--tool", "vim", "status"},
		{"--grace", "soon", "status"},
		{"--grace", "-1m", "status"},
		{"--dir", dir, "switch"},
		{"--dir", dir, "switch", "bob", "alice"},
		{"--dir", dir, "switch", "bob", "--bogus"},
		{"--dir", dir, "status", "extra"},
		{"--dir", dir, "capture"},
		{"--dir", dir, "heal"},
		{"--dir", dir, "log", "-n", "x"},
		{"--dir", dir, "log", "-n", "-1"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := run(args...)
			assert.Equal(t, 2, r.code)
			assert.Contains(t, r.stderr, "usage: credslots")
			assert.Empty(t, r.stdout)
		})
	}
	r := run("-h")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "usage: credslots")

	r = run("--json", "--dir", dir, "switch")
	assert.Equal(t, 2, r.code)
	assert.Equal(t, "usage", r.json(t)["error"], "with --json a usage error is one JSON object too")
	assert.Contains(t, r.stderr, "usage: credslots")
}

func TestLogEmpty(t *testing.T) {
	dir := credsDir(t, testNow)
	r := run("--dir", dir, "log")
	assert.Equal(t, 0, r.code)
	assert.Equal(t, "no changes recorded\n", r.stdout)
	r = run("--dir", dir, "--json", "log")
	assert.Equal(t, 0, r.code)
	assert.Equal(t, []any{}, r.json(t)["entries"])
}

func TestToolDefaults(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	gem := filepath.Join(home, ".gemini")
	write(t, filepath.Join(gem, "oauth_creds.json.work"),
		[]byte(fmt.Sprintf(`{"access_token":"a","refresh_token":"r","expiry_date":%d}`, testNow.Add(time.Hour).UnixMilli())))
	r := run("--tool", "gemini", "--json", "status")
	require.Equal(t, 0, r.code, r.stderr)
	doc := r.json(t)
	assert.Equal(t, gem, doc["creds_dir"])
	assert.Equal(t, "gemini", doc["format"])
	assert.Equal(t, filepath.Join(gem, "oauth_creds.json"), doc["live"].(map[string]any)["path"])
	r = run("--tool", "gemini", "switch", "work")
	require.Equal(t, 0, r.code, r.stderr)
	target, err := os.Readlink(filepath.Join(gem, "oauth_creds.json"))
	require.NoError(t, err)
	assert.Equal(t, "oauth_creds.json.work", target)
}

func TestRelativeTimes(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{7*time.Hour + 12*time.Minute + 30*time.Second, "in 7h12m"},
		{-3 * time.Hour, "expired 3h ago"},
		{-90*time.Minute - 30*time.Second, "expired 1h30m ago"},
		{45 * time.Minute, "in 45m"},
		{20 * time.Second, "in 20s"},
		{-50 * time.Hour, "expired 2d2h ago"},
		{72 * time.Hour, "in 3d"},
		{76*time.Hour + 59*time.Minute, "in 3d4h"},
		{-20 * 24 * time.Hour, "expired 20d ago"},
		{0, "in 0s"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, relative(testNow.Add(tt.d), testNow))
	}
}

// execBinary runs the built command.
func execBinary(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{code, out.String(), errOut.String()}
}

func TestBinaryEndToEnd(t *testing.T) {
	dir := credsDir(t, time.Now())
	r := execBinary(t, "--dir", dir, "--json", "status")
	require.Equal(t, 0, r.code, r.stderr)
	doc := r.json(t)
	assert.Equal(t, "bob", doc["active"])
	assert.Equal(t, "symlink", doc["live"].(map[string]any)["kind"])

	r = execBinary(t, "--dir", dir, "check")
	assert.Equal(t, 0, r.code, r.stdout)

	r = execBinary(t, "--dir", dir, "--json", "switch", "alice")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "not_fresh", r.json(t)["error"])

	r = execBinary(t, "--dir", dir, "switch", "erik")
	assert.Equal(t, 0, r.code, r.stderr)
	r = execBinary(t, "--dir", dir, "--json", "log")
	assert.Equal(t, 0, r.code)
	assert.Len(t, r.json(t)["entries"], 2, "the switch's intent and done records")

	r = execBinary(t, "nonsense")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "usage:")
	assert.NotContains(t, r.stdout+r.stderr, "rt-")
}

// A keep record of a login no slot holds has no sub: its column says so.
func TestLogPrintsAnOwnerlessKeepRecord(t *testing.T) {
	var b strings.Builder
	printLog(&b, []credslots.JournalEntry{{Time: testNow, Op: "keep", Phase: "done", Account: "d-4", Reason: "kept"}})
	assert.Contains(t, b.String(), "keep  done  -  kept")
}
