package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/gptme/credslots"
)

// maxResponseHead bounds what observe reads from stdin: the response heads
// must end within it (a body after them may be cut).
const maxResponseHead = 1 << 20

func (a *app) cmdObserve(_ *opts, pos []string) int {
	sub := pos[0]
	extra := fields{"action": "observe", "sub": sub}
	in := a.stdin
	if in == nil {
		if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && !isDevNull(fi) {
			return a.usageError(errors.New("observe: stdin is a terminal; pipe in what curl -sD - prints"))
		}
		in = os.Stdin
	}
	status, h, err := readResponseHead(in)
	if err != nil {
		reason := "observe: " + err.Error()
		if a.json {
			a.errorJSON("bad_input", reason, extra)
		}
		fmt.Fprintf(a.stderr, "credslots: %s\n", printable(reason))
		return exitError
	}
	m, err := a.manager("")
	if err != nil {
		return a.fail(err)
	}
	from, _ := m.ActiveSubscription()
	extra["from"] = from
	obs, err := m.Observe(sub, status, h)
	if err != nil {
		return a.refuse(err, "", extra)
	}
	code := exitOK
	if obs.Outcome == credslots.OutcomeRested || obs.Outcome == credslots.OutcomeInvalidated {
		code = exitRefused // the login is spent: time for switch --next
	}
	if a.json {
		a.printJSON(map[string]any{"ok": true, "action": "observe", "sub": sub, "from": from, "outcome": obs.Outcome,
			"reason": obs.Reason, "observation": obs})
		return code
	}
	line := fmt.Sprintf("%s %s: %s", sub, obs.Outcome, obs.Reason)
	if obs.Headroom != nil {
		line += "; headroom " + strconv.FormatFloat(math.Round(*obs.Headroom*1000)/10, 'f', -1, 64) + "%"
	}
	fmt.Fprintln(a.stdout, printable(line))
	for _, ig := range obs.Ignored {
		fmt.Fprintf(a.stderr, "credslots: observe: ignored %s\n", printable(ig))
	}
	return code
}

// isDevNull reports whether fi is the null device, a character device that
// is no terminal (a job run with < /dev/null).
func isDevNull(fi os.FileInfo) bool {
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(fi, null)
}

// readResponseHead reads what `curl -sD -` (or `curl -i`) prints for one
// request: one or more response heads, each a status line ("HTTP/1.1 429
// Too Many Requests", "HTTP/2 429"), header lines and a blank line, CRLF or
// LF, possibly followed by the body. Heads that come before the final one
// (a 100 Continue, a proxy's "200 Connection established") are skipped; the
// last head's status and headers are returned. Folded header lines are
// joined to the header before them.
func readResponseHead(r io.Reader) (int, http.Header, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxResponseHead))
	if err != nil {
		return 0, nil, fmt.Errorf("read stdin: %w", err)
	}
	var (
		status  int
		h       http.Header
		inHead  bool
		final   bool   // the head read is a final response's: what follows it is body
		last    string // the header the previous line added
		lineNum int
	)
	rest := data
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		lineNum++
		text := strings.TrimSuffix(string(line), "\r")
		if !inHead {
			switch {
			case text == "":
				continue
			case final:
				return status, h, nil // the body begins, whatever it looks like
			case strings.HasPrefix(text, "HTTP/"):
				code, err := parseStatusLine(text)
				if err != nil && h != nil {
					return status, h, nil // a body that begins with "HTTP/"
				}
				if err != nil {
					return 0, nil, fmt.Errorf("line %d: %w", lineNum, err)
				}
				status, h, inHead, last = code, http.Header{}, true, ""
				// Another head may follow only an interim response (1xx),
				// a redirect curl -L follows, or a proxy's answer to
				// CONNECT ("200 Connection established").
				final = code >= 200 && (code < 300 || code >= 400) && !strings.Contains(strings.ToLower(text), "connection established")
				continue
			case h == nil:
				return 0, nil, fmt.Errorf("line %d: no HTTP status line (pipe in what curl -sD - prints)", lineNum)
			}
			return status, h, nil // the body begins
		}
		switch {
		case text == "":
			inHead = false
		case text[0] == ' ' || text[0] == '\t':
			if last == "" {
				return 0, nil, fmt.Errorf("line %d: a continuation line without a header before it", lineNum)
			}
			vs := h[last]
			vs[len(vs)-1] += " " + strings.TrimSpace(text)
		default:
			name, value, ok := strings.Cut(text, ":")
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				return 0, nil, fmt.Errorf("line %d: not a header line", lineNum)
			}
			last = http.CanonicalHeaderKey(name)
			h[last] = append(h[last], strings.TrimSpace(value))
		}
	}
	switch {
	case h == nil:
		return 0, nil, errors.New("no HTTP status line (pipe in what curl -sD - prints)")
	case inHead && len(data) == maxResponseHead:
		return 0, nil, fmt.Errorf("the response head does not end within %d bytes", maxResponseHead)
	}
	return status, h, nil
}

// parseStatusLine reads the status code of "HTTP/1.1 200 OK" or "HTTP/2 429".
func parseStatusLine(line string) (int, error) {
	f := strings.Fields(line)
	if len(f) >= 2 && len(f[1]) == 3 {
		if code, err := strconv.Atoi(f[1]); err == nil && code >= 100 && code <= 599 {
			return code, nil
		}
	}
	return 0, errors.New("not an HTTP status line")
}
