package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gptme/credslots"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runIn invokes the command in process with stdin and the clock at testNow.
func runIn(stdin io.Reader, args ...string) result {
	var out, errOut bytes.Buffer
	a := &app{now: func() time.Time { return testNow }, stdout: &out, stderr: &errOut, stdin: stdin}
	code := a.run(args)
	return result{code, out.String(), errOut.String()}
}

func fixture(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "observe", name))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// candidate is sub's verdict as the library sees the dir at testNow.
func candidate(t *testing.T, dir, sub string) credslots.Candidate {
	t.Helper()
	m, err := credslots.New(credslots.WithCredsDir(dir), credslots.WithSubscriptions("bob", "alice", "erik"),
		credslots.WithClock(func() time.Time { return testNow }))
	require.NoError(t, err)
	for _, c := range m.Candidates() {
		if c.Sub == sub {
			return c
		}
	}
	t.Fatalf("no candidate %s", sub)
	return credslots.Candidate{}
}

// TestObserveCurlOutput feeds what curl -sD - printed (CRLF, HTTP/1.1 and
// HTTP/2 status lines, heads before the final one, a body after it) to
// credslots observe. The fixtures were captured from curl 7.88.1 talking to
// stand-in servers on 127.0.0.1 answering with the headers the real APIs
// send (HTTP/2 over TLS, HTTP/1.1 with Expect: 100-continue, through a
// CONNECT proxy); headers-only-lf.txt is typed by hand (LF line ends, a
// folded header).
func TestObserveCurlOutput(t *testing.T) {
	tests := []struct {
		fixture  string
		sub      string
		code     int
		status   float64
		outcome  string
		until    string // rest_until, "" for none
		invalid  bool
		headroom any
		text     string // the text output's line
	}{
		{
			fixture: "http2-rejected.txt", sub: "bob", code: 1, status: 429, outcome: "rested",
			until: "2026-01-01T14:00:00Z", headroom: 0.0,
			text: "bob rested: rate limit rejected (five_hour) until 2026-01-01T14:00:00Z (anthropic-ratelimit-unified-reset); " +
				"usage recorded: five_hour 102%, seven_day 30.7%; headroom 0%",
		},
		{
			fixture: "http11-allowed.txt", sub: "bob", code: 0, status: 200, outcome: "recorded", headroom: 0.58,
			text: "bob recorded: HTTP 200: rate limit allowed; usage recorded: five_hour 42%, seven_day 30%; headroom 58%",
		},
		{
			fixture: "proxy-connect-http2-429.txt", sub: "bob", code: 1, status: 429, outcome: "rested",
			until: "2026-01-01T12:02:00Z", text: "bob rested: HTTP 429 until 2026-01-01T12:02:00Z (retry-after)",
		},
		{
			fixture: "http11-continue-401.txt", sub: "bob", code: 1, status: 401, outcome: "invalidated", invalid: true,
			text: "bob invalidated: the server rejected the token (HTTP 401) while it was valid until 2026-01-01T19:12:00Z",
		},
		{
			fixture: "http11-continue-401.txt", sub: "alice", code: 0, status: 401, outcome: "nothing",
			text: "alice nothing: HTTP 401 after the token expired at 2026-01-01T09:00:00Z: a refresh is due, not a new login; not marked invalid",
		},
		{
			fixture: "http11-continue-rejected.txt", sub: "erik", code: 1, status: 429, outcome: "rested",
			until: "2026-01-01T14:00:00Z", headroom: 0.0,
		},
		{
			fixture: "http2-codex-429.txt", sub: "erik", code: 1, status: 429, outcome: "rested", until: "2026-01-01T16:00:00Z", headroom: 0.0,
		},
		{
			fixture: "headers-only-lf.txt", sub: "bob", code: 0, status: 200, outcome: "recorded", headroom: 0.09,
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture+" "+tt.sub, func(t *testing.T) {
			dir := credsDir(t, testNow)
			r := runIn(fixture(t, tt.fixture), "--dir", dir, "--json", "observe", tt.sub)
			require.Equal(t, tt.code, r.code, r.stderr)
			doc := r.json(t)
			assert.Equal(t, true, doc["ok"])
			assert.Equal(t, "observe", doc["action"])
			assert.Equal(t, tt.sub, doc["sub"])
			assert.Equal(t, tt.outcome, doc["outcome"])
			obs, ok := doc["observation"].(map[string]any)
			require.True(t, ok, "the observation: %v", doc)
			assert.Equal(t, tt.status, obs["status"])
			assert.Equal(t, tt.outcome, obs["outcome"])
			assert.Equal(t, tt.headroom, obs["headroom"])
			c := candidate(t, dir, tt.sub)
			if tt.until == "" {
				assert.Nil(t, obs["rest_until"])
				assert.Nil(t, c.RestingUntil)
			} else {
				assert.Equal(t, tt.until, obs["rest_until"])
				require.NotNil(t, c.RestingUntil)
				assert.Equal(t, tt.until, c.RestingUntil.Format(time.RFC3339))
			}
			assert.Equal(t, tt.invalid, c.Invalid)

			if tt.text != "" {
				// The same response again, as text: the same conclusion.
				dir := credsDir(t, testNow)
				r := runIn(fixture(t, tt.fixture), "--dir", dir, "observe", tt.sub)
				require.Equal(t, tt.code, r.code, r.stderr)
				assert.Equal(t, tt.text+"\n", r.stdout)
			}
		})
	}
}

// A body after the final head is skipped, even one whose first line begins
// as a status line would.
func TestObserveCommandSkipsABodyThatLooksLikeAHead(t *testing.T) {
	dir := credsDir(t, testNow)
	in := "HTTP/2 429\r\nretry-after: 60\r\n\r\nHTTP/1.1 bad gateway from upstream\r\nmore body\r\n"
	r := runIn(strings.NewReader(in), "--dir", dir, "observe", "bob")
	require.Equal(t, exitRefused, r.code, r.stderr)
	assert.Equal(t, "bob rested: HTTP 429 until 2026-01-01T12:01:00Z (retry-after)\n", r.stdout)
	// Even one that is a whole status line: a final response's head is
	// the last.
	in = "HTTP/2 429\r\nretry-after: 60\r\n\r\nHTTP/1.1 502 bad gateway from upstream\r\n"
	r = runIn(strings.NewReader(in), "--dir", credsDir(t, testNow), "observe", "bob")
	require.Equal(t, exitRefused, r.code, r.stderr)
	assert.Equal(t, "bob rested: HTTP 429 until 2026-01-01T12:01:00Z (retry-after)\n", r.stdout)
	// A head after a redirect's is read as the final one.
	in = "HTTP/1.1 301 Moved\r\nlocation: /x\r\n\r\nHTTP/1.1 200 OK\r\nanthropic-ratelimit-unified-status: allowed\r\n\r\n"
	r = runIn(strings.NewReader(in), "--dir", dir, "observe", "bob")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "bob nothing: HTTP 200: rate limit allowed\n", r.stdout)
}

func TestObserveCommandReportsIgnoredHeaders(t *testing.T) {
	dir := credsDir(t, testNow)
	r := runIn(fixture(t, "headers-only-lf.txt"), "--dir", dir, "observe", "bob")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "bob recorded: HTTP 200: rate limit allowed_warning; usage recorded: seven_day 91%; headroom 9%\n", r.stdout)
	assert.Equal(t, "credslots: observe: ignored anthropic-ratelimit-unified-5h-utilization: \"lots\" is not a number\n", r.stderr)
}

func TestObserveCommandBadInput(t *testing.T) {
	dir := credsDir(t, testNow)
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "no HTTP status line"},
		{"not a response", "", ""},
		{"a bad status line", "HTTP/1.1 OK\r\n\r\n", "line 1: not an HTTP status line"},
		{"a bad header line", "HTTP/2 200\r\nthis is not a header\r\n\r\n", "line 2: not a header line"},
		{"a continuation first", "HTTP/2 200\r\n  folded\r\n\r\n", "line 2: a continuation line without a header before it"},
		{"a head that never ends", "HTTP/2 200\r\n" + strings.Repeat("x-pad: "+strings.Repeat("a", 100)+"\r\n", 11000), "does not end within 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in io.Reader = strings.NewReader(tt.in)
			if tt.name == "not a response" {
				in, tt.want = fixture(t, "not-http.txt"), "line 1: no HTTP status line (pipe in what curl -sD - prints)"
			}
			before := snapshotDir(t, dir)
			r := runIn(in, "--dir", dir, "--json", "observe", "bob")
			assert.Equal(t, 2, r.code)
			doc := r.json(t)
			assert.Equal(t, false, doc["ok"])
			assert.Equal(t, "bad_input", doc["error"])
			assert.Contains(t, doc["reason"], tt.want)
			assert.Equal(t, before, snapshotDir(t, dir), "bad input changes nothing")
		})
	}
	t.Run("stdin from /dev/null", func(t *testing.T) {
		null, err := os.Open(os.DevNull)
		require.NoError(t, err)
		defer null.Close()
		saved := os.Stdin
		os.Stdin = null
		defer func() { os.Stdin = saved }()
		r := run("--dir", dir, "observe", "bob")
		assert.Equal(t, 2, r.code)
		assert.Contains(t, r.stderr, "no HTTP status line")
		assert.NotContains(t, r.stderr, "terminal", "/dev/null is no terminal")
	})
	t.Run("an unknown sub", func(t *testing.T) {
		r := runIn(fixture(t, "http2-rejected.txt"), "--dir", dir, "--json", "observe", "zed")
		assert.Equal(t, 1, r.code)
		assert.Equal(t, "unknown_subscription", r.json(t)["error"])
	})
	t.Run("no sub", func(t *testing.T) {
		r := runIn(strings.NewReader(""), "--dir", dir, "observe")
		assert.Equal(t, 2, r.code)
		assert.Contains(t, r.stderr, "observe: wrong number of arguments (it takes 1)")
	})
}

// TestObserveThenSwitchNext is the shell loop: observe a rejection, then
// switch --next picks the sub with the most headroom.
func TestObserveThenSwitchNext(t *testing.T) {
	dir := credsDir(t, testNow)
	// alice expired; erik has the latest expiry but reported little headroom.
	write(t, filepath.Join(dir, ".credentials.json.alice"), cred(testNow.Add(9*time.Hour), "rt-alice"))
	low := "HTTP/2 200\r\nanthropic-ratelimit-unified-5h-utilization: 0.95\r\nanthropic-ratelimit-unified-5h-reset: 1767283200\r\n\r\n"
	require.Equal(t, 0, runIn(strings.NewReader(low), "--dir", dir, "observe", "erik").code)
	require.Equal(t, 1, runIn(fixture(t, "http2-rejected.txt"), "--dir", dir, "observe", "bob").code)
	r := run("--dir", dir, "switch", "--next")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "alice")
}

// snapshotDir maps every file under dir to its content.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		out[path] = string(data)
		return err
	}))
	return out
}

// FuzzReadResponseHead: any input is read without a panic, and a status is
// only ever one from a status line.
func FuzzReadResponseHead(f *testing.F) {
	for _, name := range []string{"http2-rejected.txt", "http11-continue-401.txt", "proxy-connect-http2-429.txt", "headers-only-lf.txt", "not-http.txt"} {
		data, err := os.ReadFile(filepath.Join("testdata", "observe", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("HTTP/2 200\r\n \r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		status, h, err := readResponseHead(bytes.NewReader(data))
		if err != nil {
			return
		}
		if status < 100 || status > 599 || h == nil {
			t.Fatalf("status %d, header %v", status, h)
		}
	})
}

func TestStatusShowsHeadroom(t *testing.T) {
	dir := credsDir(t, testNow)
	require.Equal(t, 0, runIn(fixture(t, "http11-allowed.txt"), "--dir", dir, "observe", "bob").code)
	r := run("--dir", dir, "status")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "headroom 58%")
	r = run("--dir", dir, "--json", "status")
	slots := map[string]map[string]any{}
	for _, s := range r.json(t)["slots"].([]any) {
		slot := s.(map[string]any)
		slots[slot["sub"].(string)] = slot
	}
	assert.Equal(t, 0.58, slots["bob"]["headroom"])
	assert.NotContains(t, slots["alice"], "headroom", "alice's is unknown")
}
