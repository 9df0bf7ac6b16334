package main

// This file holds the command's own language: how it writes and reads
// durations, how it words flag errors and the library's reasons, and its
// "did you mean" for a mistyped command or flag.

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"

	"github.com/gptme/credslots"
)

// human writes a duration in days, hours and minutes, the two largest
// units that apply: "3d4h", "20d", "7h12m", "45m"; seconds under a minute
// ("20s"). Negative durations are written as their size.
func human(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	const day = 24 * time.Hour
	// Built with strconv, not fmt: status writes one for every slot.
	n := func(v time.Duration, unit string) string { return strconv.FormatInt(int64(v), 10) + unit }
	switch {
	case d < time.Minute:
		return n(d/time.Second, "s")
	case d < time.Hour:
		return n(d/time.Minute, "m")
	case d < day:
		h, m := d/time.Hour, d%time.Hour/time.Minute
		if m == 0 {
			return n(h, "h")
		}
		return n(h, "h") + n(m, "m")
	default:
		days, h := d/day, d%day/time.Hour
		if h == 0 {
			return n(days, "d")
		}
		return n(days, "d") + n(h, "h")
	}
}

// daysPart is a leading count of days in a duration ("3d" of "3d4h").
var daysPart = regexp.MustCompile(`^(\d+)d`)

// parseDuration reads a duration as the command's flags take it: Go's
// syntax (90m, 2h30m, 45s) plus days ("1d", "3d4h"). A bare number has no
// unit and is refused.
func parseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	neg := strings.HasPrefix(in, "-")
	in = strings.TrimPrefix(in, "-")
	var days time.Duration
	if m := daysPart.FindStringSubmatch(in); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > math.MaxInt64/int64(24*time.Hour) {
			return 0, errTooLong // the digits are a count of days
		}
		days = time.Duration(n) * 24 * time.Hour
		in = in[len(m[0]):]
	}
	var rest time.Duration
	if in != "" {
		d, err := time.ParseDuration(in)
		if err != nil && wellFormedDuration.MatchString(in) {
			return 0, errTooLong // past what a time.Duration holds
		}
		if err != nil || strings.HasPrefix(in, "-") || strings.HasPrefix(in, "+") {
			return 0, errNotDuration
		}
		rest = d
	} else if days == 0 {
		return 0, errNotDuration
	}
	if rest > math.MaxInt64-days {
		return 0, errTooLong
	}
	d := days + rest
	if neg {
		d = -d
	}
	return d, nil
}

// wellFormedDuration is what time.ParseDuration reads, unsigned: a
// well-formed one it refuses is too long.
var wellFormedDuration = regexp.MustCompile(`^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$`)

var errNotDuration = errors.New("not a duration: write it with a unit, such as 90m, 5h, 1d or 3d4h")

// errTooLong is a duration past what a time.Duration holds (about 292
// years), which would otherwise wrap round to a negative one.
var errTooLong = errors.New("too long a duration: at most about 292 years")

// durationValue is a flag.Value for a duration the command's way.
type durationValue struct{ d *time.Duration }

func newDuration(d *time.Duration, def time.Duration) *durationValue {
	*d = def
	return &durationValue{d}
}

func (v *durationValue) String() string {
	if v == nil || v.d == nil {
		return ""
	}
	return flagDuration(*v.d)
}

func (v *durationValue) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

func (v *durationValue) Get() any { return *v.d }

// intValue is a flag.Value for a whole number, with the command's error.
type intValue struct{ n *int }

func (v *intValue) String() string {
	if v == nil || v.n == nil {
		return "0"
	}
	return strconv.Itoa(*v.n)
}

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a whole number")
	}
	*v.n = n
	return nil
}

// Go's flag package words its errors its own way; these read them.
var (
	flagUnknown  = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	flagNeedsArg = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
	flagBadValue = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-+([^:]*): (.*)$`)
)

// flagError rewords an error of Go's flag package in the command's words,
// with --flag spelling and, for an unknown flag, the nearest known one of
// fs.
func flagError(err error, fs *flag.FlagSet) error {
	msg := err.Error()
	if m := flagUnknown.FindStringSubmatch(msg); m != nil {
		name, _, _ := strings.Cut(m[1], "=")
		out := "unknown flag " + dashed(name)
		if fs != nil {
			var known []string
			fs.VisitAll(func(f *flag.Flag) { known = append(known, f.Name) })
			if near := nearest(name, known); near != "" {
				out += "; did you mean " + dashed(near) + "?"
			}
		}
		return errors.New(out)
	}
	if m := flagNeedsArg.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s needs a value", dashed(m[1]))
	}
	if m := flagBadValue.FindStringSubmatch(msg); m != nil {
		why := m[3]
		switch why {
		case "parse error", strconv.ErrSyntax.Error():
			why = "not valid"
		}
		if strings.Contains(msg, "boolean") {
			why = "not true or false"
		}
		return fmt.Errorf("%s %q: %s", dashed(m[2]), m[1], why)
	}
	return err
}

// dashed spells a flag the way the help does: -v and -n, else --name.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// nearest returns the candidate closest to s: the same but for case, or
// within an edit distance of 2 (1 for names of up to 4 letters); "" when
// none is that close.
func nearest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if strings.EqualFold(s, c) {
			return c
		}
		limit := 2
		if len(c) <= 4 {
			limit = 1
		}
		if d := editDistance(strings.ToLower(s), c); d <= limit && d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of two neighbours.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// libraryWords turn the library's reasons, written for Go callers, into
// the command's: its commands and flags instead of method and option
// names. SUB stands for the sub the message is about, and is replaced by
// it; NAME for a sub the operator must name (whose login it is, which
// credslots cannot tell), and is never filled in. Applied in order.
var libraryWords = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`heal it into its slot first \(HealDriftTo\) or Force to keep it as`),
		// The switch's target is not the sub the live file belongs to.
		"heal it into its slot first (credslots heal --auto, or credslots heal NAME with the sub it belongs to) or pass --force to keep it as"},
	{regexp.MustCompile(`verify the login, then CaptureSlotFingerprint \(or Force\)`),
		"verify the login, then run credslots capture SUB (or pass --force)"},
	{regexp.MustCompile(`log in again, then capture \(or Force\)`),
		"log in again and run credslots add SUB (or pass --force)"},
	{regexp.MustCompile(`call CaptureSlotFingerprint after a fresh login`),
		"run credslots capture SUB after a fresh login"},
	{regexp.MustCompile(`name the sub \(HealDriftTo\)`), "name the sub: credslots heal NAME"},
	{regexp.MustCompile(`heal it into the slot that was active(?: \(credslots heal --auto, or credslots heal NAME\))?`),
		"heal it into the slot that was active (credslots heal --auto, or credslots heal NAME)"},
	{regexp.MustCompile(`\((?:or )?Force\)`), "(or pass --force)"},
	{regexp.MustCompile(`\bForce the heal\b`), "pass --force"},
	{regexp.MustCompile(`\bor Force\b`), "or pass --force"},
	{regexp.MustCompile(`\bunless Force\b`), "unless --force"},
	{regexp.MustCompile(`\bForce\b`), "--force"},
	{regexp.MustCompile(`\bCaptureSlotFingerprint\b`), "credslots capture"},
	{regexp.MustCompile(`\bHealDriftTo\b`), "credslots heal NAME"},
	{regexp.MustCompile(`\bHealDrift\b`), "credslots heal --auto"},
	{regexp.MustCompile(`\bSwitchNext\b`), "credslots switch --next"},
	{regexp.MustCompile(`\bSwitchTo\b`), "credslots switch"},
	{regexp.MustCompile(`\bAdopt\b`), "credslots add"},
	{regexp.MustCompile(`\bRestore\b`), "credslots restore"},
	{regexp.MustCompile(`\bMarkInvalid\b`), "credslots invalid"},
	// A lease ends with its credslots run (the library's Release).
	{regexp.MustCompile(`\(its credslots run, or Release\)`), "(stop its credslots run)"},
	// A slot removed by hand while live: what is wrong, then the way on.
	{regexp.MustCompile(`live symlink is broken: .+ does not exist or is not a readable file$`),
		"${0}: switch to another sub (credslots switch --next), or bring its login back from a backup (credslots backups, then credslots restore BACKUP NAME)"},
	// Durations the library writes in minutes, in days, hours, minutes.
	{regexp.MustCompile(`\bexpired (\d+)m ago\b`), "expired ${m} ago"},
}

// libraryLiterals holds, for each of libraryWords, text every match of its
// pattern contains, so that speak passes over a reason without it without
// running the pattern: a status of many slots speaks each slot's reasons,
// and most match no word.
var libraryLiterals = func() []string {
	lits := make([]string, len(libraryWords))
	for i, w := range libraryWords {
		lits[i] = requiredLiteral(w.re.String())
	}
	return lits
}()

// literalsByFirst holds libraryLiterals by their first byte, for anyLiteral.
var literalsByFirst = func() (by [256][]string) {
	for _, lit := range libraryLiterals {
		if lit != "" {
			by[lit[0]] = append(by[lit[0]], lit)
		}
	}
	return by
}()

// anyLiteral reports whether s holds any of libraryLiterals, in one pass
// over s (most reasons hold none). Every string holds an empty one.
func anyLiteral(s string) bool {
	for _, lit := range libraryLiterals {
		if lit == "" {
			return true
		}
	}
	for i := 0; i < len(s); i++ {
		for _, lit := range literalsByFirst[s[i]] {
			if strings.HasPrefix(s[i:], lit) {
				return true
			}
		}
	}
	return false
}

// requiredLiteral is the longest literal text every match of pattern
// contains: the pattern itself when it is a literal, else the longest
// literal among the parts a concatenation matches one after the other.
// "" when there is none, which every string contains.
func requiredLiteral(pattern string) string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return ""
	}
	parts := []*syntax.Regexp{re.Simplify()}
	if parts[0].Op == syntax.OpConcat {
		parts = parts[0].Sub
	}
	lit := ""
	for _, p := range parts {
		if p.Op == syntax.OpLiteral && p.Flags&syntax.FoldCase == 0 && len(string(p.Rune)) > len(lit) {
			lit = string(p.Rune)
		}
	}
	return lit
}

// speak rewrites a library reason in the command's words; sub, when known,
// fills in SUB.
func speak(s, sub string) string {
	for i, w := range libraryWords {
		if i == 0 && !anyLiteral(s) {
			break // no word applies, nor can one's rewrite make another apply
		}
		if !strings.Contains(s, libraryLiterals[i]) {
			continue
		}
		if strings.Contains(w.with, "${m}") {
			s = w.re.ReplaceAllStringFunc(s, func(match string) string {
				n, err := strconv.ParseInt(w.re.FindStringSubmatch(match)[1], 10, 64)
				if err != nil {
					return match
				}
				if n >= 24*60 {
					// Days and hours, without time.Duration's 292-year limit.
					days, h := n/(24*60), n%(24*60)/60
					if h == 0 {
						return fmt.Sprintf("expired %dd ago", days)
					}
					return fmt.Sprintf("expired %dd%dh ago", days, h)
				}
				return "expired " + human(time.Duration(n)*time.Minute) + " ago"
			})
			continue
		}
		s = w.re.ReplaceAllString(s, w.with)
	}
	if sub != "" {
		s = strings.ReplaceAll(s, "SUB", sub)
	}
	return s
}

// unknownCommand is the error for a command credslots does not have, with
// the nearest one it has.
func unknownCommand(name string) error {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	if near := nearest(name, names); near != "" {
		return fmt.Errorf("unknown command %q; did you mean %s?", name, near)
	}
	return fmt.Errorf("unknown command %q", name)
}

// speakStatus rewrites the snapshot's reasons, written for Go callers, in
// the command's words, for the table and for --json alike.
func speakStatus(st *credslots.Status) {
	for i, p := range st.Problems {
		st.Problems[i] = clean(p, nil)
	}
	for i := range st.Slots {
		s := &st.Slots[i]
		s.FreshReason = speak(s.FreshReason, s.Sub)
		s.Identity.Reason = speak(s.Identity.Reason, s.Sub)
	}
}

// speakCandidates is speakStatus for switch --next's candidates.
func speakCandidates(cs []credslots.Candidate) []credslots.Candidate {
	for i := range cs {
		c := &cs[i]
		c.FreshReason = speak(c.FreshReason, c.Sub)
		c.PassedOver = speak(c.PassedOver, c.Sub)
		c.Identity.Reason = speak(c.Identity.Reason, c.Sub)
	}
	return cs
}
