//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gptme/credslots"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// poolDir is a creds dir of three fresh subs around now, nothing live at
// home: erik expires last, then bob, then alice.
func poolDir(t *testing.T, now time.Time) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o700))
	write(t, filepath.Join(dir, ".credentials.json.alice"), cred(now.Add(5*time.Hour), "rt-alice"))
	write(t, filepath.Join(dir, ".credentials.json.bob"), cred(now.Add(6*time.Hour), "rt-bob"))
	write(t, filepath.Join(dir, ".credentials.json.erik"), cred(now.Add(7*time.Hour), "rt-erik"))
	return dir
}

func poolManager(t *testing.T, dir string, now time.Time) *credslots.Manager {
	t.Helper()
	m, err := credslots.New(credslots.WithCredsDir(dir), credslots.WithSubscriptions("alice", "bob", "erik"),
		credslots.WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	return m
}

func refreshTokenIn(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc struct {
		ClaudeAiOauth struct {
			RefreshToken string `json:"refreshToken"`
		} `json:"claudeAiOauth"`
	}
	require.NoError(t, json.Unmarshal(data, &doc))
	return doc.ClaudeAiOauth.RefreshToken
}

func TestRunGivesCMDALeasedSeatAndWritesBack(t *testing.T) {
	dir := poolDir(t, testNow)
	refreshed := filepath.Join(t.TempDir(), "refreshed.json")
	write(t, refreshed, cred(testNow.Add(20*time.Hour), "rt-erik-2"))
	report := filepath.Join(t.TempDir(), "report")
	// CMD reports what it was given, then refreshes the way Claude Code
	// does (a temporary file renamed over the seat's credential file).
	script := `set -e
printf '%s\n%s\n%s\n%s\n' "$CREDSLOTS_SUB" "$CREDSLOTS_SEAT" "$CLAUDE_SECURESTORAGE_CONFIG_DIR" "$CREDSLOTS_LEASE_FD" > "$REPORT"
test -f "$CREDSLOTS_SEAT/.credentials.json"
cp "$REFRESHED" "$CREDSLOTS_SEAT/.credentials.json.tmp.1"
mv "$CREDSLOTS_SEAT/.credentials.json.tmp.1" "$CREDSLOTS_SEAT/.credentials.json"
exit 3`
	t.Setenv("REPORT", report)
	t.Setenv("REFRESHED", refreshed)
	r := run("--dir", dir, "run", "--", "sh", "-c", script)
	assert.Equal(t, 3, r.code, "run exits with CMD's status: %s", r.stderr)

	got, err := os.ReadFile(report)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	require.Len(t, lines, 4)
	assert.Equal(t, "erik", lines[0], "the best free sub")
	assert.Equal(t, filepath.Join(dir, ".credslots", "seats"), filepath.Dir(lines[1]), "a private seat")
	assert.Equal(t, lines[1], lines[2], "the seat is Claude Code's secure-storage dir")
	assert.Equal(t, "3", lines[3])
	_, err = os.Lstat(lines[1])
	assert.True(t, os.IsNotExist(err), "the private seat is removed afterwards")
	assert.Equal(t, "rt-erik-2", refreshTokenIn(t, filepath.Join(dir, ".credentials.json.erik")), "CMD's refresh is in the slot")

	r = run("--dir", dir, "--json", "leases")
	require.Equal(t, 0, r.code, r.stderr)
	leases := r.json(t)["leases"].([]any)
	require.Len(t, leases, 1)
	assert.Equal(t, false, leases[0].(map[string]any)["held"])
	r = run("--dir", dir, "leases")
	assert.Contains(t, r.stdout, "released")
	assert.NotContains(t, r.stdout, "expired", "a lease's start is no expiry")
	assert.Regexp(t, `(now|\d+\w* ago)\n`, r.stdout)
}

func TestRunExitCodes(t *testing.T) {
	dir := poolDir(t, testNow)
	m := poolManager(t, dir, testNow)
	l, err := m.Lease(context.Background(), filepath.Join(t.TempDir(), "seat"), credslots.LeaseSub("bob"))
	require.NoError(t, err)
	defer l.Release()

	r := run("--dir", dir, "run", "--sub", "bob", "--", "true")
	assert.Equal(t, exitTempFail, r.code, r.stderr)
	assert.Contains(t, r.stderr, "bob: leased to")

	start := time.Now()
	r = run("--dir", dir, "--json", "run", "--sub", "bob", "--wait", "200ms", "--", "true")
	assert.Equal(t, exitTempFail, r.code, r.stderr)
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
	assert.Equal(t, "no_free_sub", r.json(t)["error"])

	r = run("--dir", dir, "leases")
	assert.Contains(t, r.stdout, "bob")
	assert.Contains(t, r.stdout, "held")
	r = run("--dir", dir, "--json", "switch", "bob")
	assert.Equal(t, exitRefused, r.code, "switch refuses a leased sub")
	assert.Equal(t, "leased", r.json(t)["error"])
	r = run("--dir", dir, "status")
	assert.Contains(t, r.stdout, "leased to ")

	for _, args := range [][]string{
		{"run"},
		{"run", "--wait", "-1s", "--", "true"},
		{"run", "--sub", "zed", "--", "true"},
		{"run", "--seat", dir, "--", "true"},
		{"run", "--seat", l.Seat(), "--", "true"}, // another lease's seat
	} {
		r := run(append([]string{"--dir", dir}, args...)...)
		assert.Equal(t, exitError, r.code, "%v: %s", args, r.stderr)
	}
	r = run("--dir", dir, "run", "--", "sh", "-c", "exit 0")
	assert.Equal(t, 0, r.code, r.stderr)
	r = run("--dir", dir, "run", "--", filepath.Join(t.TempDir(), "no-such-cmd"))
	assert.Equal(t, 127, r.code)
}

func TestRunLeaseOutlivesCMDInAnInheritingChild(t *testing.T) {
	dir := poolDir(t, testNow)
	pidFile := filepath.Join(t.TempDir(), "pid")
	t.Setenv("PIDFILE", pidFile)
	// CMD leaves a background process that keeps fd 3, the lease's lock.
	r := run("--dir", dir, "run", "--sub", "alice", "--", "sh", "-c", `sleep 60 >/dev/null 2>&1 & echo $! > "$PIDFILE"`)
	require.Equal(t, 0, r.code, r.stderr)
	raw, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	m := poolManager(t, dir, testNow)
	_, err = m.Lease(context.Background(), filepath.Join(t.TempDir(), "seat"), credslots.LeaseSub("alice"))
	require.ErrorIs(t, err, credslots.ErrLeased, "the inheriting child still holds alice's lease")
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool {
		l, err := m.Lease(context.Background(), filepath.Join(t.TempDir(), "seat"), credslots.LeaseSub("alice"))
		if err != nil {
			return false
		}
		return l.Release() == nil
	}, 10*time.Second, 20*time.Millisecond)
}

func TestRunForwardsSignals(t *testing.T) {
	now := time.Now()
	dir := poolDir(t, now)
	marker := filepath.Join(t.TempDir(), "started")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			_ = os.Remove(marker)
			cmd := exec.Command(binary, "--dir", dir, "run", "--",
				"sh", "-c", `trap 'exit 42' TERM INT HUP; touch "$0"; while :; do sleep 0.05; done`, marker)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			require.Eventually(t, func() bool { _, err := os.Stat(marker); return err == nil }, 10*time.Second, 10*time.Millisecond)
			require.NoError(t, cmd.Process.Signal(sig))
			err := cmd.Wait()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, stderr.String())
			assert.Equal(t, 42, ee.ExitCode(), "CMD got %s and its status is run's", sig)
		})
	}
	m := poolManager(t, dir, now)
	leases, err := m.Leases()
	require.NoError(t, err)
	for _, l := range leases {
		assert.False(t, l.Held, "released: %s", l.Sub)
	}
}

func TestRunWritesBackARefreshAsItLands(t *testing.T) {
	dir := poolDir(t, testNow)
	refreshed := filepath.Join(t.TempDir(), "refreshed.json")
	write(t, refreshed, cred(testNow.Add(20*time.Hour), "rt-erik-2"))
	t.Setenv("REFRESHED", refreshed)
	t.Setenv("SLOT", filepath.Join(dir, ".credentials.json.erik"))
	// CMD refreshes, then waits (5 s at most) for its refresh to reach the
	// slot while it still runs.
	script := `cp "$REFRESHED" "$CREDSLOTS_SEAT/.credentials.json.tmp.1"
mv "$CREDSLOTS_SEAT/.credentials.json.tmp.1" "$CREDSLOTS_SEAT/.credentials.json"
i=0
while ! grep -q rt-erik-2 "$SLOT"; do
  i=$((i+1)); [ $i -gt 100 ] && exit 9
  sleep 0.05
done`
	r := run("--dir", dir, "run", "--", "sh", "-c", script)
	assert.Equal(t, 0, r.code, "the refresh reached the slot while CMD ran: %s", r.stderr)
}

func TestRunGivesEachCLIItsSeatVariable(t *testing.T) {
	now := testNow
	tests := []struct {
		tool, slot, check string
		doc               []byte
	}{
		{"claude", ".credentials.json.a", `test -f "$CLAUDE_SECURESTORAGE_CONFIG_DIR/.credentials.json" && test "$CLAUDE_SECURESTORAGE_CONFIG_DIR" = "$CREDSLOTS_SEAT"`, cred(now.Add(time.Hour), "rt-a")},
		{"codex", "auth.json.a", `test -f "$CODEX_HOME/auth.json" && test "$CODEX_HOME" = "$CREDSLOTS_SEAT"`, codexCred(now.Add(time.Hour))},
		{"gemini", "oauth_creds.json.a", `test -f "$GEMINI_CLI_HOME/.gemini/oauth_creds.json" && test "$GEMINI_CLI_HOME/.gemini" = "$CREDSLOTS_SEAT" && test "$GEMINI_FORCE_FILE_STORAGE" = true`,
			[]byte(`{"access_token":"ya29.x","refresh_token":"rt-a","expiry_date":` + strconv.FormatInt(now.Add(time.Hour).UnixMilli(), 10) + `}`)},
	}
	for _, tt := range tests {
		t.Run(tt.tool, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, tt.slot), tt.doc)
			r := run("--tool", tt.tool, "--dir", dir, "run", "--", "sh", "-c", tt.check)
			assert.Equal(t, 0, r.code, r.stderr)
			seats, err := os.ReadDir(filepath.Join(dir, ".credslots", "seats"))
			require.NoError(t, err)
			assert.Empty(t, seats, "the private seat is removed")
		})
	}
}

// With the seat in CLAUDE_CONFIG_DIR, an inherited
// CLAUDE_SECURESTORAGE_CONFIG_DIR (set, or set but empty: ~/.claude) would
// make Claude Code 2.1.220 and later read another login than the seat's:
// CMD never sees it.
func TestRunDropsAnInheritedSecureStorageDirWhenTheSeatIsTheConfigDir(t *testing.T) {
	for _, inherited := range []string{"", "/elsewhere"} {
		dir := t.TempDir()
		write(t, filepath.Join(dir, ".credentials.json.a"), cred(testNow.Add(time.Hour), "rt-a"))
		t.Setenv("CLAUDE_SECURESTORAGE_CONFIG_DIR", inherited)
		check := `test -z "${CLAUDE_SECURESTORAGE_CONFIG_DIR+set}" && test -f "$CLAUDE_CONFIG_DIR/.credentials.json" && test "$CLAUDE_CONFIG_DIR" = "$CREDSLOTS_SEAT"`
		r := run("--dir", dir, "run", "--seat-env", "CLAUDE_CONFIG_DIR", "--", "sh", "-c", check)
		assert.Equal(t, 0, r.code, "inherited %q: %s", inherited, r.stderr)
	}
}

// TestRemoveOfALeasedSubSaysTheCommandsWay: remove refuses a sub leased to
// a seat, and says how to end the lease in the command's own words (the
// credslots run that holds it), not the library's.
func TestRemoveOfALeasedSubSaysTheCommandsWay(t *testing.T) {
	dir := poolDir(t, testNow)
	m := poolManager(t, dir, testNow)
	l, err := m.Lease(context.Background(), filepath.Join(t.TempDir(), "seat"), credslots.LeaseSub("erik"))
	require.NoError(t, err)
	defer l.Release()
	r := run("--dir", dir, "--subs", "alice,bob,erik", "remove", "erik")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "end that lease first (stop its credslots run)")
	assert.NotContains(t, r.stderr, "Release")
	assertCommandWords(t, r.stderr)
}

// run --seat DIR into a seat that already holds a login of its own (one
// made there by hand): the login is kept as a backup, and run says where,
// not only in a log.
func TestRunSaysWhereASeatsEarlierLoginWent(t *testing.T) {
	dir := poolDir(t, testNow)
	seat := t.TempDir()
	write(t, filepath.Join(seat, ".credentials.json"), cred(testNow.Add(5*time.Hour), "rt-zoe"))
	r := run("--dir", dir, "run", "--seat", seat, "--", "true")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, seat+" held another login than the one ")
	assert.Contains(t, r.stderr, "it is kept as .credslots/backups/")
	assert.NotContains(t, r.stderr, "rt-zoe")
	r = run("--dir", dir, "--json", "backups")
	require.Equal(t, 0, r.code, r.stderr)
	found := false
	for _, b := range r.json(t)["backups"].([]any) {
		name := b.(map[string]any)["name"].(string)
		if strings.Contains(name, ".seat.") {
			found = true
			path := filepath.Join(dir, filepath.FromSlash(name))
			assert.Equal(t, "rt-zoe", refreshTokenIn(t, path), "the seat's own login, whole")
		}
	}
	assert.True(t, found, r.stdout)

	// An empty seat: nothing to say.
	r = run("--dir", dir, "run", "--seat", seat, "--", "true")
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stderr, "held another login")
}
