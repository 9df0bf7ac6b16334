package credslots

// This file reads the rate-limit headers of an API response into usage
// windows, and says how much headroom a login has left. What the headers
// mean was read off the released CLIs that read them (see [Manager.Observe]).

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// UsageWindow is one rate-limit window of a login as an API response
// reported it: how much of it was used and when it starts over.
type UsageWindow struct {
	// Name is the window: "five_hour", "seven_day",
	// "seven_day_overage_included" or "overage" (Anthropic's unified
	// headers, named as their representative claim names them), or
	// "codex_primary", "codex_secondary" (Codex CLI's x-codex-* headers).
	Name string `json:"name"`
	// Utilization is the fraction of the window used: 0.42 is 42%. It is
	// above 1 when usage ran past the window's cap (Claude Code's own code
	// says this happens); such a window has no headroom.
	Utilization float64 `json:"utilization"`
	// ResetsAt is when the window starts over; nil when the response did
	// not say.
	ResetsAt *time.Time `json:"resets_at"`
	// Status is the window's own status as sent ("allowed",
	// "allowed_warning", "rejected"); "" when none.
	Status string `json:"status,omitempty"`
	// Minutes is the window's length when the response said it (Codex CLI).
	Minutes int64 `json:"window_minutes,omitempty"`
	// ObservedAt is when the response was observed (the Manager's clock).
	ObservedAt time.Time `json:"observed_at"`
}

// Header names and values, as Claude Code 2.1.332 and Codex CLI 0.171.0
// read them (the README lists them).
const (
	hdrUnified     = "anthropic-ratelimit-unified-"
	hdrStatus      = hdrUnified + "status"
	hdrReset       = hdrUnified + "reset"
	hdrClaim       = hdrUnified + "representative-claim"
	hdrOverage     = hdrUnified + "overage-status"
	hdrRetry       = "retry-after"
	hdrRetryMs     = "retry-after-ms"
	hdrCodex       = "x-codex-"
	statusRejected = "rejected"
)

// unifiedWindows pairs each window's name (its representative claim) with
// the abbreviation its headers use: anthropic-ratelimit-unified-5h-utilization.
var unifiedWindows = [...]struct{ name, abbr string }{
	{"five_hour", "5h"},
	{"seven_day", "7d"},
	{"seven_day_overage_included", "7d_oi"},
	{"overage", "overage"},
}

// codexWindows are the windows of Codex CLI's default limit family.
var codexWindows = [...]struct{ name, abbr string }{
	{"codex_primary", "primary"},
	{"codex_secondary", "secondary"},
}

// rankedWindow reports whether a window's utilization counts toward a
// login's headroom: the plan's own windows. The overage window measures
// paid extra usage, and seven_day_overage_included one model's bucket;
// both are recorded, not ranked.
func rankedWindow(name string) bool {
	switch name {
	case "five_hour", "seven_day", "codex_primary", "codex_secondary":
		return true
	}
	return false
}

// windowOrder is the order windows are kept and shown in.
func windowOrder(name string) int {
	for i, w := range unifiedWindows {
		if w.name == name {
			return i
		}
	}
	for i, w := range codexWindows {
		if w.name == name {
			return len(unifiedWindows) + i
		}
	}
	return len(unifiedWindows) + len(codexWindows)
}

// unknownResetSpan is how long a window that said neither its reset nor
// its length counts after it was observed.
const unknownResetSpan = time.Hour

// end is when the window stops counting: its reset, else its length after
// it was observed, else unknownResetSpan after; never more than
// maxObservedRest after it was observed (no published window is longer: a
// reset past that is cut, as a rest is).
func (w UsageWindow) end() time.Time {
	switch {
	case w.ResetsAt != nil:
		if limit := w.ObservedAt.Add(maxObservedRest); w.ResetsAt.After(limit) {
			return limit
		}
		return *w.ResetsAt
	case w.Minutes > 0 && w.Minutes < int64(maxObservedRest/time.Minute):
		return w.ObservedAt.Add(time.Duration(w.Minutes) * time.Minute)
	default:
		return w.ObservedAt.Add(unknownResetSpan)
	}
}

// current reports whether the window still counts at now.
func (w UsageWindow) current(now time.Time) bool { return w.end().After(now) }

// headroom is the fraction of the plan a login has left at now: 1 minus
// the highest utilization among its ranked windows that have not started
// over, never below 0, rounded to four decimals; nil when no such window
// is known.
func headroom(ws []UsageWindow, now time.Time) *float64 {
	h, known := 1.0, false
	for _, w := range ws {
		if rankedWindow(w.Name) && w.current(now) {
			h, known = math.Min(h, 1-w.Utilization), true
		}
	}
	if !known {
		return nil
	}
	h = math.Round(math.Max(h, 0)*1e4) / 1e4
	return &h
}

// mergeUsage is the usage a sub keeps after an observation: the windows
// seen replace those of the same name, and windows that started over are
// dropped.
func mergeUsage(old, seen []UsageWindow, now time.Time) []UsageWindow {
	byName := map[string]UsageWindow{}
	for _, w := range old {
		byName[w.Name] = w
	}
	for _, w := range seen {
		byName[w.Name] = w
	}
	out := make([]UsageWindow, 0, len(byName))
	for _, w := range byName {
		if w.current(now) {
			out = append(out, w)
		}
	}
	sortWindows(out)
	return out
}

// currentUsage is the windows of ws that still count at now.
func currentUsage(ws []UsageWindow, now time.Time) []UsageWindow {
	out := []UsageWindow{}
	for _, w := range ws {
		if w.current(now) {
			out = append(out, w)
		}
	}
	return out
}

func sortWindows(ws []UsageWindow) {
	sort.Slice(ws, func(i, j int) bool {
		a, b := windowOrder(ws[i].Name), windowOrder(ws[j].Name)
		if a != b {
			return a < b
		}
		return ws[i].Name < ws[j].Name
	})
}

// usageSummary renders windows for a reason: "five_hour 42%, seven_day 30%".
func usageSummary(ws []UsageWindow) string {
	parts := make([]string, 0, len(ws))
	for _, w := range ws {
		parts = append(parts, fmt.Sprintf("%s %s", w.Name, percent(w.Utilization)))
	}
	return strings.Join(parts, ", ")
}

func percent(f float64) string {
	return strconv.FormatFloat(math.Round(f*1000)/10, 'f', -1, 64) + "%"
}

// responseLimits is what the rate-limit headers of one response say.
type responseLimits struct {
	status  string     // unified status, lower case; "" when absent or unreadable
	reset   *time.Time // anthropic-ratelimit-unified-reset
	claim   string     // representative claim
	overage string     // overage status
	windows []UsageWindow
	// resets and statuses are each unified window's reset and status, also
	// for a window whose utilization was missing.
	resets    map[string]time.Time
	statuses  map[string]string
	retry     *time.Time // Retry-After (or retry-after-ms), as a time
	retryFrom string     // which of the two
	ignored   []string
}

// headerReader looks header names up case-insensitively, in an
// http.Header canonicalized or not, and notes what it cannot read.
type headerReader struct {
	values  map[string][]string
	ignored *[]string
}

func newHeaderReader(h http.Header, ignored *[]string) headerReader {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the same answer whatever the map's order
	values := make(map[string][]string, len(h))
	for _, k := range keys {
		lk := strings.ToLower(strings.TrimSpace(k))
		values[lk] = append(values[lk], h[k]...)
	}
	return headerReader{values: values, ignored: ignored}
}

// get returns the header's first value, trimmed, and whether it is present
// with a non-empty value.
func (r headerReader) get(name string) (string, bool) {
	vs := r.values[name]
	for i, v := range vs {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		for _, other := range vs[i+1:] {
			if o := strings.TrimSpace(other); o != "" && o != v {
				r.ignore(name, other, "is a second, different value; the first is used")
				break
			}
		}
		return v, true
	}
	return "", false
}

// ignore notes that a header's value was not read, and why.
func (r headerReader) ignore(name, value, why string) {
	*r.ignored = append(*r.ignored, fmt.Sprintf("%s: %q %s", name, clip(strings.TrimSpace(value), 64), why))
}

// maxUnix is the last second of the year 9999.
const maxUnix = 253402300799

// reset reads a reset time: Unix seconds (fractions rounded, as Claude Code
// rounds them) or RFC 3339. Milliseconds are not seconds: they land past
// the year 9999 and are refused.
func (r headerReader) reset(name string) (time.Time, bool) {
	v, ok := r.get(name)
	if !ok {
		return time.Time{}, false
	}
	if decimalNumber(v) {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > maxUnix {
			r.ignore(name, v, "is not a Unix time in seconds")
			return time.Time{}, false
		}
		return time.Unix(int64(math.Round(f)), 0).UTC(), true
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		if t.Unix() < 0 || t.Unix() > maxUnix {
			// The state file keeps times of the years 1970 to 9999 only.
			r.ignore(name, v, "is not between the years 1970 and 9999")
			return time.Time{}, false
		}
		return t.UTC(), true
	}
	r.ignore(name, v, "is neither Unix seconds nor an RFC 3339 time")
	return time.Time{}, false
}

// decimalNumber reports whether v is a number as JSON writes one (leading
// zeros allowed): digits with an optional sign, fraction and exponent, not
// Go's wider syntax (underscores, hexadecimal, Inf, NaN).
func decimalNumber(v string) bool {
	i, digits := 0, func(i int) int {
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		return i
	}
	if i < len(v) && v[i] == '-' {
		i++
	}
	j := digits(i)
	if j == i {
		return false
	}
	if i = j; i < len(v) && v[i] == '.' {
		if j = digits(i + 1); j == i+1 {
			return false
		}
		i = j
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		if j = digits(i); j == i {
			return false
		}
		i = j
	}
	return i == len(v)
}

// fraction reads a utilization; scale is 1 for a fraction, 100 for a
// percent. A negative or non-finite value is refused; one above the cap is
// kept.
func (r headerReader) fraction(name string, scale float64) (float64, bool) {
	v, ok := r.get(name)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	switch {
	case !decimalNumber(v) || err != nil || math.IsInf(f, 0):
		r.ignore(name, v, "is not a number")
		return 0, false
	case f < 0:
		r.ignore(name, v, "is negative")
		return 0, false
	}
	return f / scale, true
}

// word reads a value that must be one of allowed (compared without case),
// or, with allowed nil, a lower-case name of letters, digits and
// underscores.
func (r headerReader) word(name string, allowed ...string) (string, bool) {
	v, ok := r.get(name)
	if !ok {
		return "", false
	}
	lv := strings.ToLower(v)
	if allowed == nil {
		if len(lv) <= 64 && strings.Trim(lv, "abcdefghijklmnopqrstuvwxyz0123456789_") == "" {
			return lv, true
		}
		r.ignore(name, v, "is not a window name")
		return "", false
	}
	for _, a := range allowed {
		if lv == a {
			return lv, true
		}
	}
	r.ignore(name, v, "is not one of "+strings.Join(allowed, ", "))
	return "", false
}

// retryAfter reads retry-after-ms (milliseconds, which the Anthropic SDKs
// prefer when present), else Retry-After: seconds (a fraction allowed, as
// the SDKs read it) or an HTTP date. It returns when and which header said.
func (r headerReader) retryAfter(now time.Time) (time.Time, string, bool) {
	if v, ok := r.get(hdrRetryMs); ok {
		if ms, ok := nonNegative(v); ok {
			return now.Add(capRest(ms / 1000)), hdrRetryMs, true
		}
		r.ignore(hdrRetryMs, v, "is not a number of milliseconds")
	}
	v, ok := r.get(hdrRetry)
	if !ok {
		return time.Time{}, "", false
	}
	if s, ok := nonNegative(v); ok {
		return now.Add(capRest(s)), hdrRetry, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.UTC(), hdrRetry, true
	}
	r.ignore(hdrRetry, v, "is neither seconds nor an HTTP date")
	return time.Time{}, "", false
}

// nonNegative reads a finite decimal number that is not negative.
func nonNegative(v string) (float64, bool) {
	if strings.Trim(v, "0123456789.") != "" {
		return 0, false // no signs, exponents, hex, Inf or NaN
	}
	f, err := strconv.ParseFloat(v, 64)
	return f, err == nil
}

// capRest is a number of seconds as a duration, at most maxObservedRest.
func capRest(seconds float64) time.Duration {
	if seconds >= maxObservedRest.Seconds() {
		return maxObservedRest
	}
	return time.Duration(seconds * float64(time.Second))
}

var windowStatuses = []string{"allowed", "allowed_warning", statusRejected}

// readLimits reads every rate-limit header of h that Observe uses.
func readLimits(h http.Header, now time.Time) responseLimits {
	lim := responseLimits{resets: map[string]time.Time{}, statuses: map[string]string{}, ignored: []string{}}
	r := newHeaderReader(h, &lim.ignored)
	lim.status, _ = r.word(hdrStatus, windowStatuses...)
	if t, ok := r.reset(hdrReset); ok {
		lim.reset = &t
	}
	lim.claim, _ = r.word(hdrClaim)
	lim.overage, _ = r.word(hdrOverage, windowStatuses...)
	for _, uw := range unifiedWindows {
		prefix := hdrUnified + uw.abbr + "-"
		w := UsageWindow{Name: uw.name, ObservedAt: now}
		if t, ok := r.reset(prefix + "reset"); ok {
			w.ResetsAt, lim.resets[uw.name] = &t, t
		}
		if uw.name == "overage" {
			w.Status = lim.overage // its status is the overage status
		} else if s, ok := r.word(prefix+"status", windowStatuses...); ok {
			w.Status, lim.statuses[uw.name] = s, s
		}
		if u, ok := r.fraction(prefix+"utilization", 1); ok {
			w.Utilization = u
			lim.windows = append(lim.windows, w)
		}
	}
	for _, cw := range codexWindows {
		prefix := hdrCodex + cw.abbr + "-"
		u, ok := r.fraction(prefix+"used-percent", 100)
		if !ok {
			continue
		}
		w := UsageWindow{Name: cw.name, Utilization: u, ObservedAt: now}
		if t, ok := r.reset(prefix + "reset-at"); ok {
			w.ResetsAt = &t
		}
		if v, ok := r.get(prefix + "window-minutes"); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				w.Minutes = n
			} else {
				r.ignore(prefix+"window-minutes", v, "is not a whole number of minutes")
			}
		}
		// Codex CLI itself drops a window that says nothing: 0% used, no
		// length, no reset.
		if u != 0 || w.Minutes != 0 || w.ResetsAt != nil {
			lim.windows = append(lim.windows, w)
		}
	}
	if t, from, ok := r.retryAfter(now); ok {
		lim.retry, lim.retryFrom = &t, from
	}
	return lim
}

// rejectedReset is when a unified rejection ends, and which header said
// so: -unified-reset, else the representative window's reset, else the
// latest reset of a rejected window; a source whose reset is not after now
// is passed over for the next. When every source is past, the first one,
// so that the caller can say so.
func (lim responseLimits) rejectedReset(now time.Time) (time.Time, string, bool) {
	var past time.Time
	pastFrom := ""
	future := func(t time.Time, from string) bool {
		if t.After(now) {
			return true
		}
		if pastFrom == "" {
			past, pastFrom = t, from
		}
		return false
	}
	if lim.reset != nil && future(*lim.reset, hdrReset) {
		return *lim.reset, hdrReset, true
	}
	for _, uw := range unifiedWindows {
		if uw.name == lim.claim {
			if t, ok := lim.resets[uw.name]; ok && future(t, hdrUnified+uw.abbr+"-reset") {
				return t, hdrUnified + uw.abbr + "-reset", true
			}
		}
	}
	var latest time.Time
	from := ""
	for _, uw := range unifiedWindows {
		if t, ok := lim.resets[uw.name]; ok && lim.statuses[uw.name] == statusRejected && t.After(latest) {
			latest, from = t, hdrUnified+uw.abbr+"-reset"
		}
	}
	if from != "" && future(latest, from) {
		return latest, from, true
	}
	return past, pastFrom, pastFrom != ""
}

// codexExhausted is the latest reset of a Codex window used up (100% or
// more), and which header said so.
func (lim responseLimits) codexExhausted() (time.Time, string, bool) {
	var latest time.Time
	from := ""
	for _, w := range lim.windows {
		if strings.HasPrefix(w.Name, "codex_") && w.Utilization >= 1 && w.ResetsAt != nil && w.ResetsAt.After(latest) {
			latest, from = *w.ResetsAt, hdrCodex+strings.TrimPrefix(w.Name, "codex_")+"-reset-at"
		}
	}
	return latest, from, from != ""
}
