package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// capturedDir builds a creds dir of n fresh slots s1..sn, each captured,
// the live symlink on s1.
func capturedDir(tb testing.TB, n int) string {
	tb.Helper()
	dir := tb.TempDir()
	require.NoError(tb, os.Chmod(dir, 0o700))
	for i := 1; i <= n; i++ {
		sub := "s" + strconv.Itoa(i)
		data := cred(testNow.Add(30*24*time.Hour), "rt-"+sub)
		require.NoError(tb, os.WriteFile(filepath.Join(dir, ".credentials.json."+sub), data, 0o600))
	}
	require.NoError(tb, os.Symlink(".credentials.json.s1", filepath.Join(dir, ".credentials.json")))
	for i := 1; i <= n; i++ {
		r := run("--dir", dir, "capture", "s"+strconv.Itoa(i))
		require.Equal(tb, 0, r.code, r.stderr)
	}
	return dir
}

// countingWriter counts the writes made to it.
type countingWriter struct {
	writes int
	bytes  int
	err    error
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.err != nil {
		return 0, w.err
	}
	w.bytes += len(p)
	return len(p), nil
}

// TestStatusWritesOnce: status and check print with one write to stdout,
// as many slots as there are, as a table or as JSON.
func TestStatusWritesOnce(t *testing.T) {
	for _, n := range []int{3, 100} {
		dir := capturedDir(t, n)
		for _, args := range [][]string{
			{"status"}, {"--json", "status"}, {"check"}, {"--json", "check"},
		} {
			t.Run(fmt.Sprintf("%d slots %s", n, strings.Join(args, " ")), func(t *testing.T) {
				var out countingWriter
				var errOut strings.Builder
				a := &app{now: func() time.Time { return testNow }, stdout: &out, stderr: &errOut}
				code := a.run(append([]string{"--dir", dir}, args...))
				require.Equal(t, 0, code, errOut.String())
				assert.Empty(t, errOut.String())
				assert.Equal(t, 1, out.writes, "one write to stdout")
				if args[0] == "status" {
					assert.Greater(t, out.bytes, 40*n, "every slot is printed")
				}
			})
		}
	}
}

// TestStatusWriteFailure: a failed write of stdout is reported on stderr
// and exits 2, never silently 0.
func TestStatusWriteFailure(t *testing.T) {
	dir := capturedDir(t, 3)
	for _, args := range [][]string{{"status"}, {"--json", "status"}, {"check"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out := countingWriter{err: errors.New("no space left on device")}
			var errOut strings.Builder
			a := &app{now: func() time.Time { return testNow }, stdout: &out, stderr: &errOut}
			code := a.run(append([]string{"--dir", dir}, args...))
			assert.Equal(t, exitError, code)
			assert.Equal(t, 1, out.writes)
			assert.Equal(t, "credslots: write standard output: no space left on device\n", errOut.String())
		})
	}
}

// TestStatusBufferedOutputUnchanged: what status prints through its buffer
// is what it printed cell by cell, errors included.
func TestStatusBufferedOutputUnchanged(t *testing.T) {
	dir := credsDir(t, testNow)
	captureAll(t, dir)
	r := run("--dir", dir, "status")
	require.Equal(t, 0, r.code, r.stderr)
	golden(t, "status.golden", strings.ReplaceAll(r.stdout, dir, "$DIR"))

	r = run("--dir", filepath.Join(dir, "absent"), "--json", "status")
	assert.Equal(t, exitError, r.code)
	assert.Equal(t, "error", r.json(t)["error"], "an error is still one JSON object on stdout")
	assert.Contains(t, r.stderr, "no such directory")
}

// TestPrintableFastPath: plain ASCII is returned as quoting would return it.
func TestPrintableFastPath(t *testing.T) {
	quoted := func(s string) string {
		q := strconv.QuoteToGraphic(s)
		return strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`)
	}
	cases := []string{"", "bob", "a b", `say "hi"`, `back\slash`, `\"`, "tab\there", "nl\n", "del\x7f",
		"ünï", "\x1b[31mred", "~!@#$%^&*()_+{}|:<>?", "\xff"}
	for c := byte(0); c < 0x80; c++ {
		cases = append(cases, "x"+string(rune(c))+"y")
	}
	for _, s := range cases {
		assert.Equal(t, quoted(s), printable(s), "%q", s)
	}
}

// TestRequiredLiteral: the text speak looks for before running a word's
// pattern is in every match of it.
func TestRequiredLiteral(t *testing.T) {
	for pattern, want := range map[string]string{
		`\bForce\b`:                  "Force",
		`\((?:or )?Force\)`:          "Force)",
		`\bexpired (\d+)m ago\b`:     "expired ",
		`name the sub \(HealDrift\)`: "name the sub (HealDrift)",
		`a|b`:                        "",
		`(?i)force`:                  "",
		`x(`:                         "",
	} {
		assert.Equal(t, want, requiredLiteral(pattern), pattern)
	}
	for i, w := range libraryWords {
		lit := libraryLiterals[i]
		assert.NotEmpty(t, lit, "%s has a literal to look for", w.re)
		// Every match, in every reason the tests of this package
		// speak, holds the literal.
		for _, s := range speakCorpus {
			for _, m := range w.re.FindAllString(s, -1) {
				assert.Contains(t, m, lit, "%s matching %q", w.re, s)
			}
		}
	}
}

// speakCorpus holds reasons the library writes, and the command's words.
var speakCorpus = func() []string {
	out := []string{
		"heal it into its slot first (HealDriftTo) or Force to keep it as a backup",
		"verify the login, then CaptureSlotFingerprint (or Force)",
		"log in again, then capture (or Force)",
		"call CaptureSlotFingerprint after a fresh login",
		"name the sub (HealDriftTo)",
		"heal it into the slot that was active",
		"refused (or Force)", "refused (Force)", "Force the heal", "or Force", "unless Force", "Force",
		"HealDrift", "HealDriftTo", "SwitchNext", "SwitchTo", "Adopt", "Restore", "MarkInvalid",
		"expired 90m ago", "expired 29905364m ago (at x)", "token expired 3m ago",
	}
	for _, w := range libraryWords {
		out = append(out, w.with)
	}
	return out
}()

// TestSpeakSkipsNoWord: a reason no word matches is spoken as it is, and
// speaking it runs no pattern (it allocates nothing).
func TestSpeakSkipsNoWord(t *testing.T) {
	reason := "slot s1 is fresh: expires at 2026-01-31T12:00:00Z, in 720h0m0s"
	assert.Equal(t, reason, speak(reason, ""))
	allocs := testing.AllocsPerRun(100, func() { _ = speak(reason, "") })
	assert.Zero(t, allocs)
	for _, s := range speakCorpus {
		assert.Equal(t, speak(s, ""), speak(speak(s, ""), ""), "speaking is idempotent: %q", s)
	}
}

// BenchmarkStatusCommand is the status command in process, table and JSON,
// at 3 and 100 captured fresh slots. `make bench-status` times it as
// processes, start-up included.
func BenchmarkStatusCommand(b *testing.B) {
	for _, n := range []int{3, 100} {
		dir := capturedDir(b, n)
		for _, json := range []bool{false, true} {
			args := []string{"--dir", dir, "status"}
			name := fmt.Sprintf("slots=%d/table", n)
			if json {
				args, name = append(args, "--json"), fmt.Sprintf("slots=%d/json", n)
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					a := &app{now: func() time.Time { return testNow }, stdout: io.Discard, stderr: io.Discard}
					if code := a.run(args); code != 0 {
						b.Fatalf("exit %d", code)
					}
				}
			})
		}
	}
}

// TestAnyLiteral: the one-pass check agrees with looking for each word's
// literal in turn.
func TestAnyLiteral(t *testing.T) {
	each := func(s string) bool {
		for _, lit := range libraryLiterals {
			if strings.Contains(s, lit) {
				return true
			}
		}
		return false
	}
	corpus := []string{"", "valid until 2026-12-31T13:32:53Z", "fingerprint matches", "expires soon", "forced"}
	for _, s := range append(speakCorpus, libraryLiterals...) {
		for cut := 0; cut <= len(s); cut++ {
			corpus = append(corpus, s[:cut], s[cut:], "x "+s[:cut]+"\x00"+s[cut:])
		}
	}
	for _, s := range corpus {
		assert.Equal(t, each(s), anyLiteral(s), "%q", s)
	}
	assert.False(t, anyLiteral("valid until 2026-12-31T13:32:53Z"))
	assert.True(t, anyLiteral("or pass Force here"))
}

// TestHumanUnits: every branch of human, as status prints it.
func TestHumanUnits(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 20 * time.Second: "20s", -20 * time.Second: "20s", 45 * time.Minute: "45m",
		7 * time.Hour: "7h", 7*time.Hour + 12*time.Minute: "7h12m", 20 * 24 * time.Hour: "20d",
		76*time.Hour + 30*time.Minute: "3d4h", 1<<63 - 1: "106751d23h",
	} {
		assert.Equal(t, want, human(d), "%v", d)
	}
}
