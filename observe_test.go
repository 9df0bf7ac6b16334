package credslots

import (
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// epoch renders a time as the Unix seconds the reset headers carry.
func epoch(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// hdr builds a header with the names exactly as given (not canonicalized),
// as a hand-built map or a proxy that keeps case would hand it over.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h[kv[i]] = append(h[kv[i]], kv[i+1])
	}
	return h
}

// canonical builds a header through http.Header.Add, as net/http does.
func canonical(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestObserveHeaders(t *testing.T) {
	in2h, in3h, in3d, in5d := testNow.Add(2*time.Hour), testNow.Add(3*time.Hour), testNow.Add(72*time.Hour), testNow.Add(120*time.Hour)
	rejected5h := []string{
		"anthropic-ratelimit-unified-status", "rejected",
		"anthropic-ratelimit-unified-reset", epoch(in2h),
		"anthropic-ratelimit-unified-representative-claim", "five_hour",
		"anthropic-ratelimit-unified-5h-status", "rejected",
		"anthropic-ratelimit-unified-5h-utilization", "1.0",
		"anthropic-ratelimit-unified-5h-reset", epoch(in2h),
		"anthropic-ratelimit-unified-7d-status", "allowed",
		"anthropic-ratelimit-unified-7d-utilization", "0.3",
		"anthropic-ratelimit-unified-7d-reset", epoch(in5d),
	}
	pf := func(f float64) *float64 { return &f }
	tests := []struct {
		name     string
		status   int
		h        http.Header
		outcome  string
		until    time.Time // zero: not rested
		windows  map[string]float64
		headroom *float64
		ignored  []string // substrings of Ignored, in order
		reason   string   // substring of Reason
		over     bool     // the windows reported are all over: none recorded
	}{
		{
			name: "rejected rests until the unified reset", status: 429, h: hdr(rejected5h...),
			outcome: OutcomeRested, until: in2h, windows: map[string]float64{"five_hour": 1, "seven_day": 0.3}, headroom: pf(0),
			reason: "rate limit rejected (five_hour) until 2026-01-01T14:00:00Z (anthropic-ratelimit-unified-reset); usage recorded: five_hour 100%, seven_day 30%",
		},
		{
			name: "canonicalized by net/http", status: 429, h: canonical(rejected5h...),
			outcome: OutcomeRested, until: in2h, windows: map[string]float64{"five_hour": 1, "seven_day": 0.3}, headroom: pf(0),
		},
		{
			name: "mixed case names as a raw map", status: 429,
			h: hdr("Anthropic-RateLimit-Unified-Status", "REJECTED", "ANTHROPIC-RATELIMIT-UNIFIED-RESET", epoch(in2h),
				"anthropic-ratelimit-unified-5H-Utilization", " 0.97 "),
			outcome: OutcomeRested, until: in2h, windows: map[string]float64{"five_hour": 0.97}, headroom: pf(0.03),
		},
		{
			name: "rejected on a 200 served from overage still rests", status: 200,
			h: hdr("anthropic-ratelimit-unified-status", "rejected", "anthropic-ratelimit-unified-reset", epoch(in3h),
				"anthropic-ratelimit-unified-overage-status", "allowed"),
			outcome: OutcomeRested, until: in3h, reason: "billed as overage",
		},
		{
			name: "allowed records the utilizations", status: 200,
			h: hdr("anthropic-ratelimit-unified-status", "allowed",
				"anthropic-ratelimit-unified-5h-utilization", "0.42", "anthropic-ratelimit-unified-5h-reset", epoch(in3h),
				"anthropic-ratelimit-unified-7d-utilization", "0.3068459187383675", "anthropic-ratelimit-unified-7d-reset", epoch(in5d)),
			outcome: OutcomeRecorded, windows: map[string]float64{"five_hour": 0.42, "seven_day": 0.3068459187383675}, headroom: pf(0.58),
			reason: "HTTP 200: rate limit allowed; usage recorded: five_hour 42%, seven_day 30.7%",
		},
		{
			name: "allowed_warning records", status: 200,
			h: hdr("anthropic-ratelimit-unified-status", "allowed_warning", "anthropic-ratelimit-unified-representative-claim", "seven_day",
				"anthropic-ratelimit-unified-7d-utilization", "0.91", "anthropic-ratelimit-unified-7d-reset", epoch(in5d),
				"anthropic-ratelimit-unified-7d-surpassed-threshold", "0.9"),
			outcome: OutcomeRecorded, windows: map[string]float64{"seven_day": 0.91}, headroom: pf(0.09),
		},
		{
			name: "overage and per-model windows are recorded, not ranked", status: 200,
			h: hdr("anthropic-ratelimit-unified-overage-utilization", "0.82", "anthropic-ratelimit-unified-overage-reset", epoch(in5d),
				"anthropic-ratelimit-unified-7d_oi-utilization", "0.5", "anthropic-ratelimit-unified-7d_oi-reset", epoch(in5d)),
			outcome: OutcomeRecorded, windows: map[string]float64{"seven_day_overage_included": 0.5, "overage": 0.82},
		},
		{
			name: "rejected without the unified reset: the claim's window", status: 429,
			h: hdr("anthropic-ratelimit-unified-status", "rejected", "anthropic-ratelimit-unified-representative-claim", "seven_day",
				"anthropic-ratelimit-unified-5h-reset", epoch(in2h), "anthropic-ratelimit-unified-7d-reset", epoch(in3d)),
			outcome: OutcomeRested, until: in3d, reason: "(anthropic-ratelimit-unified-7d-reset)",
		},
		{
			name: "rejected without reset or claim: the latest rejected window", status: 429,
			h: hdr("anthropic-ratelimit-unified-status", "rejected",
				"anthropic-ratelimit-unified-5h-status", "rejected", "anthropic-ratelimit-unified-5h-reset", epoch(in2h),
				"anthropic-ratelimit-unified-7d-status", "rejected", "anthropic-ratelimit-unified-7d-reset", epoch(in3d),
				"anthropic-ratelimit-unified-7d_oi-status", "allowed", "anthropic-ratelimit-unified-7d_oi-reset", epoch(in5d)),
			outcome: OutcomeRested, until: in3d,
		},
		{
			name: "rejected with no reset at all: Retry-After", status: 429,
			h:       hdr("anthropic-ratelimit-unified-status", "rejected", "retry-after", "120"),
			outcome: OutcomeRested, until: testNow.Add(2 * time.Minute), reason: "(retry-after)",
		},
		{
			name: "RFC 3339 reset", status: 429,
			h:       hdr("anthropic-ratelimit-unified-status", "rejected", "anthropic-ratelimit-unified-reset", in3h.Format(time.RFC3339)),
			outcome: OutcomeRested, until: in3h,
		},
		{
			name: "fractional reset seconds are rounded", status: 429,
			h:       hdr("anthropic-ratelimit-unified-status", "rejected", "anthropic-ratelimit-unified-reset", epoch(in3h)+".6"),
			outcome: OutcomeRested, until: in3h.Add(time.Second),
		},
		{
			name: "a reset in the past falls back to Retry-After", status: 429,
			h:       hdr("anthropic-ratelimit-unified-status", "rejected", "anthropic-ratelimit-unified-reset", epoch(testNow.Add(-time.Hour)), "retry-after", "60"),
			outcome: OutcomeRested, until: testNow.Add(time.Minute),
			reason: "rate limit rejected (its reset 2026-01-01T11:00:00Z, anthropic-ratelimit-unified-reset, already past) until 2026-01-01T12:01:00Z (retry-after)",
		},
		{
			name: "a past unified reset is passed over for the claim's window", status: 429,
			h: hdr("anthropic-ratelimit-unified-status", "rejected", "anthropic-ratelimit-unified-reset", epoch(testNow.Add(-time.Hour)),
				"anthropic-ratelimit-unified-representative-claim", "seven_day", "anthropic-ratelimit-unified-7d-reset", epoch(in3d),
				"retry-after", "60"),
			outcome: OutcomeRested, until: in3d, reason: "(anthropic-ratelimit-unified-7d-reset)",
		},
		{
			name: "a reset at exactly now falls back to the default", status: 429,
			h:       hdr("anthropic-ratelimit-unified-status", "rejected", "anthropic-ratelimit-unified-reset", epoch(testNow)),
			outcome: OutcomeRested, until: testNow.Add(DefaultRetryAfter), reason: "already past",
		},
		{
			name: "a Retry-After of zero rests nothing", status: 429,
			h:       hdr("anthropic-ratelimit-unified-status", "rejected", "anthropic-ratelimit-unified-reset", epoch(testNow), "retry-after", "0"),
			outcome: OutcomeNothing, reason: "is not in the future: not rested",
		},
		{
			name: "a malformed reset falls back to Retry-After", status: 429,
			h:       hdr("anthropic-ratelimit-unified-status", "rejected", "anthropic-ratelimit-unified-reset", "soon", "Retry-After", "30"),
			outcome: OutcomeRested, until: testNow.Add(30 * time.Second),
			ignored: []string{`anthropic-ratelimit-unified-reset: "soon" is neither Unix seconds nor an RFC 3339 time`},
		},
		{
			name: "a reset in milliseconds is not seconds", status: 429,
			h:       hdr("anthropic-ratelimit-unified-status", "rejected", "anthropic-ratelimit-unified-reset", strconv.FormatInt(in2h.UnixMilli(), 10)),
			outcome: OutcomeRested, until: testNow.Add(DefaultRetryAfter),
			ignored: []string{"is not a Unix time in seconds"}, reason: "the default",
		},
		{
			name: "an RFC 3339 reset past the year 9999 is ignored, not fatal", status: 200,
			h: hdr("anthropic-ratelimit-unified-status", "allowed", "anthropic-ratelimit-unified-5h-utilization", "0.5",
				"anthropic-ratelimit-unified-5h-reset", "9999-12-31T23:59:59-01:00"),
			outcome: OutcomeRecorded, windows: map[string]float64{"five_hour": 0.5}, headroom: pf(0.5),
			ignored: []string{`anthropic-ratelimit-unified-5h-reset: "9999-12-31T23:59:59-01:00" is not between the years 1970 and 9999`},
		},
		{
			name: "Go's wider number syntax is not a number", status: 200,
			h: hdr("anthropic-ratelimit-unified-5h-utilization", "1_0", "anthropic-ratelimit-unified-7d-utilization", "0x1p-2",
				"anthropic-ratelimit-unified-7d_oi-utilization", "Inf", "anthropic-ratelimit-unified-overage-utilization", ".5",
				"anthropic-ratelimit-unified-reset", "1_767_272_400"),
			outcome: OutcomeNothing,
			ignored: []string{`"1_767_272_400" is neither Unix seconds nor an RFC 3339 time`,
				`"1_0" is not a number`, `"0x1p-2" is not a number`, `"Inf" is not a number`, `".5" is not a number`},
		},
		{
			name: "an exponent is a number", status: 200,
			h:       hdr("anthropic-ratelimit-unified-5h-utilization", "1e-05", "anthropic-ratelimit-unified-5h-reset", epoch(in2h)+"e0"),
			outcome: OutcomeRecorded, windows: map[string]float64{"five_hour": 0.00001}, headroom: pf(1),
		},
		{
			name: "a reset beyond 31 days is cut", status: 429,
			h:       hdr("anthropic-ratelimit-unified-status", "rejected", "anthropic-ratelimit-unified-reset", epoch(testNow.Add(400*24*time.Hour))),
			outcome: OutcomeRested, until: testNow.Add(maxObservedRest), reason: "cut to 31 days",
		},
		{
			name: "an unknown status is ignored", status: 200,
			h:       hdr("anthropic-ratelimit-unified-status", "exhausted"),
			outcome: OutcomeNothing, ignored: []string{`"exhausted" is not one of allowed, allowed_warning, rejected`},
		},
		{
			name: "a claim that is not a window name is ignored", status: 200,
			h:       hdr("anthropic-ratelimit-unified-representative-claim", "five hour; drop table"),
			outcome: OutcomeNothing, ignored: []string{"is not a window name"},
		},
		{
			name: "utilization above 1 is kept and leaves no headroom", status: 200,
			h:       hdr("anthropic-ratelimit-unified-5h-utilization", "1.25", "anthropic-ratelimit-unified-5h-reset", epoch(in2h)),
			outcome: OutcomeRecorded, windows: map[string]float64{"five_hour": 1.25}, headroom: pf(0),
		},
		{
			name: "a percent-looking utilization reads as past the cap, as Claude Code reads it", status: 200,
			h:       hdr("anthropic-ratelimit-unified-7d-utilization", "42", "anthropic-ratelimit-unified-7d-reset", epoch(in5d)),
			outcome: OutcomeRecorded, windows: map[string]float64{"seven_day": 42}, headroom: pf(0),
		},
		{
			name: "negative and non-numeric utilizations are ignored", status: 200,
			h: hdr("anthropic-ratelimit-unified-5h-utilization", "-0.1", "anthropic-ratelimit-unified-7d-utilization", "NaN",
				"anthropic-ratelimit-unified-overage-utilization", "lots"),
			outcome: OutcomeNothing,
			ignored: []string{`5h-utilization: "-0.1" is negative`, `7d-utilization: "NaN" is not a number`, `overage-utilization: "lots" is not a number`},
		},
		{
			name: "two different values: the first is used", status: 200,
			h:       hdr("anthropic-ratelimit-unified-5h-utilization", "0.2", "anthropic-ratelimit-unified-5h-utilization", "0.9"),
			outcome: OutcomeRecorded, windows: map[string]float64{"five_hour": 0.2}, headroom: pf(0.8),
			ignored: []string{`"0.9" is a second, different value; the first is used`},
		},
		{
			name: "429 with Retry-After seconds", status: 429, h: hdr("Retry-After", "90"),
			outcome: OutcomeRested, until: testNow.Add(90 * time.Second), reason: "HTTP 429 until 2026-01-01T12:01:30Z (retry-after)",
		},
		{
			name: "429 with fractional Retry-After seconds, as the SDKs read them", status: 429, h: hdr("retry-after", "1.5"),
			outcome: OutcomeRested, until: testNow.Add(1500 * time.Millisecond),
		},
		{
			name: "429 with retry-after-ms, preferred as the SDKs prefer it", status: 429, h: hdr("retry-after-ms", "2500", "retry-after", "60"),
			outcome: OutcomeRested, until: testNow.Add(2500 * time.Millisecond), reason: "(retry-after-ms)",
		},
		{
			name: "429 with a malformed retry-after-ms falls back to Retry-After", status: 429, h: hdr("retry-after-ms", "soon", "retry-after", "60"),
			outcome: OutcomeRested, until: testNow.Add(time.Minute), ignored: []string{`retry-after-ms: "soon" is not a number of milliseconds`},
		},
		{
			name: "429 with a huge Retry-After is cut to 31 days", status: 429, h: hdr("retry-after", "99999999999999999999999"),
			outcome: OutcomeRested, until: testNow.Add(maxObservedRest),
		},
		{
			name: "429 with a Retry-After date", status: 429, h: canonical("Retry-After", in3h.Format(http.TimeFormat)),
			outcome: OutcomeRested, until: in3h,
		},
		{
			name: "429 with a Retry-After of 0 does not rest", status: 429, h: hdr("retry-after", "0"),
			outcome: OutcomeNothing,
		},
		{
			name: "429 with a malformed Retry-After rests the default", status: 429, h: hdr("retry-after", "-5"),
			outcome: OutcomeRested, until: testNow.Add(DefaultRetryAfter), ignored: []string{`retry-after: "-5" is neither seconds nor an HTTP date`},
		},
		{
			name: "429 with no headers rests the default", status: 429, h: nil,
			outcome: OutcomeRested, until: testNow.Add(DefaultRetryAfter), reason: "no reset or Retry-After: the default",
		},
		{
			name: "429 with the unified status allowed is another limit: Retry-After", status: 429,
			h:       hdr("anthropic-ratelimit-unified-status", "allowed", "retry-after", "10"),
			outcome: OutcomeRested, until: testNow.Add(10 * time.Second),
		},
		{
			name: "Codex CLI windows are recorded as fractions", status: 200,
			h: hdr("x-codex-primary-used-percent", "25", "x-codex-primary-window-minutes", "300", "x-codex-primary-reset-at", epoch(in2h),
				"x-codex-secondary-used-percent", "60.5", "x-codex-secondary-window-minutes", "10080", "x-codex-secondary-reset-at", epoch(in5d)),
			outcome: OutcomeRecorded, windows: map[string]float64{"codex_primary": 0.25, "codex_secondary": 0.605}, headroom: pf(0.395),
		},
		{
			name: "Codex CLI 429 with a window used up rests until its reset", status: 429,
			h: hdr("X-Codex-Primary-Used-Percent", "100", "x-codex-primary-reset-at", epoch(in2h),
				"x-codex-secondary-used-percent", "40", "x-codex-secondary-reset-at", epoch(in5d), "retry-after", "5"),
			outcome: OutcomeRested, until: in2h, reason: "usage limit reached until 2026-01-01T14:00:00Z (x-codex-primary-reset-at)",
			windows: map[string]float64{"codex_primary": 1, "codex_secondary": 0.4}, headroom: pf(0),
		},
		{
			name: "Codex CLI 429 whose used-up window's reset is past: Retry-After", status: 429,
			h: hdr("x-codex-primary-used-percent", "100", "x-codex-primary-reset-at", epoch(testNow.Add(-time.Minute)),
				"retry-after", "5"),
			outcome: OutcomeRested, until: testNow.Add(5 * time.Second),
			reason:  "HTTP 429: usage limit reached (its reset 2026-01-01T11:59:00Z, x-codex-primary-reset-at, already past) until 2026-01-01T12:00:05Z (retry-after)",
			windows: map[string]float64{"codex_primary": 1}, over: true,
		},
		{
			name: "a Codex window that says nothing is dropped, as Codex CLI drops it", status: 200,
			h:       hdr("x-codex-primary-used-percent", "0"),
			outcome: OutcomeNothing,
		},
		{
			name: "a malformed Codex window length is ignored", status: 200,
			h:       hdr("x-codex-primary-used-percent", "10", "x-codex-primary-window-minutes", "five hours"),
			outcome: OutcomeRecorded, windows: map[string]float64{"codex_primary": 0.1}, headroom: pf(0.9),
			ignored: []string{"is not a whole number of minutes"},
		},
		{
			name: "200 without rate-limit headers", status: 200, h: hdr("content-type", "application/json"),
			outcome: OutcomeNothing, reason: "HTTP 200: nothing to act on",
		},
		{
			name: "500 rests nothing", status: 500, h: hdr("retry-after", "30"),
			outcome: OutcomeNothing,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			writeSlot(t, f.slot("alice"), fresh, "rt-alice")
			f.link(t, "bob")
			before, err := f.m.Journal()
			require.NoError(t, err)

			obs, err := f.m.Observe("bob", tt.status, tt.h)
			require.NoError(t, err)
			assert.Equal(t, "bob", obs.Sub)
			assert.Equal(t, tt.status, obs.Status)
			assert.Equal(t, tt.outcome, obs.Outcome, obs.Reason)
			assert.Contains(t, obs.Reason, tt.reason)
			var c Candidate
			for _, cc := range f.m.Candidates() {
				if cc.Sub == "bob" {
					c = cc
				}
			}
			journal, err := f.m.Journal()
			require.NoError(t, err)
			if tt.until.IsZero() {
				assert.Nil(t, obs.RestUntil)
				assert.Nil(t, c.RestingUntil, "not resting")
			} else {
				require.NotNil(t, obs.RestUntil)
				assert.Equal(t, tt.until, *obs.RestUntil)
				require.NotNil(t, c.RestingUntil, "resting")
				assert.Equal(t, tt.until, *c.RestingUntil)
				require.Len(t, journal, len(before)+1, "the rest is journaled, the usage is not")
				assert.Equal(t, opRest, journal[len(journal)-1].Op)
			}
			if tt.outcome != OutcomeRested {
				assert.Len(t, journal, len(before), "usage readings are not journaled")
			}
			assert.False(t, c.Invalid)
			got := map[string]float64{}
			for _, w := range obs.Windows {
				got[w.Name] = w.Utilization
				assert.Equal(t, testNow, w.ObservedAt)
			}
			if tt.windows == nil {
				tt.windows = map[string]float64{}
			}
			assert.Equal(t, tt.windows, got)
			assert.Equal(t, len(tt.windows) > 0 && !tt.over, obs.Recorded)
			assert.Equal(t, tt.headroom, obs.Headroom)
			assert.Equal(t, tt.headroom, c.Headroom, "Candidates shows the kept headroom")
			require.Len(t, obs.Ignored, len(tt.ignored), "%q", obs.Ignored)
			for i, want := range tt.ignored {
				assert.Contains(t, obs.Ignored[i], want)
			}
		})
	}
}

func TestObserveNeverShortensARest(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	week := testNow.Add(72 * time.Hour)
	obs, err := f.m.Observe("bob", 429, hdr("anthropic-ratelimit-unified-status", "rejected", "anthropic-ratelimit-unified-reset", epoch(week)))
	require.NoError(t, err)
	require.Equal(t, OutcomeRested, obs.Outcome)
	journal, err := f.m.Journal()
	require.NoError(t, err)

	obs, err = f.m.Observe("bob", 429, hdr("retry-after", "60"))
	require.NoError(t, err)
	assert.Equal(t, OutcomeRested, obs.Outcome)
	require.NotNil(t, obs.RestUntil)
	assert.Equal(t, week, *obs.RestUntil)
	assert.Contains(t, obs.Reason, "already resting until 2026-01-04T12:00:00Z")
	c := f.m.Candidates()[0]
	require.NotNil(t, c.RestingUntil)
	assert.Equal(t, week, *c.RestingUntil, "the longer rest stands")
	again, err := f.m.Journal()
	require.NoError(t, err)
	assert.Len(t, again, len(journal), "nothing journaled")

	longer := week.Add(24 * time.Hour)
	obs, err = f.m.Observe("bob", 429, hdr("anthropic-ratelimit-unified-status", "rejected", "anthropic-ratelimit-unified-reset", epoch(longer)))
	require.NoError(t, err)
	assert.Equal(t, longer, *obs.RestUntil, "a longer rest extends it")
}

// A window whose reset is far away (garbage, or past any published
// window) stops counting 31 days after it was observed, as a rest would.
func TestObserveUsageWindowLastsAtMost31Days(t *testing.T) {
	c := &clock{now: testNow}
	f := newFixture(t, WithClock(c.get))
	writeSlot(t, f.slot("bob"), fresh.Add(90*24*time.Hour), "rt-bob")
	obs, err := f.m.Observe("bob", 200, hdr("anthropic-ratelimit-unified-5h-utilization", "1.0",
		"anthropic-ratelimit-unified-5h-reset", "253402300799"))
	require.NoError(t, err)
	require.True(t, obs.Recorded)
	require.NotNil(t, obs.Headroom)
	assert.Zero(t, *obs.Headroom)
	c.now = testNow.Add(maxObservedRest - time.Minute)
	require.NotNil(t, f.m.Candidates()[0].Headroom, "still counts within 31 days")
	c.now = testNow.Add(maxObservedRest)
	for _, cand := range f.m.Candidates() {
		assert.Nil(t, cand.Headroom, "%s: the window no longer counts", cand.Sub)
	}
}

func TestObserveUsageAlreadyOver(t *testing.T) {
	f := newFixture(t)
	obs, err := f.m.Observe("bob", 200, hdr("anthropic-ratelimit-unified-5h-utilization", "0.9",
		"anthropic-ratelimit-unified-5h-reset", epoch(testNow.Add(-time.Minute))))
	require.NoError(t, err)
	assert.Equal(t, OutcomeNothing, obs.Outcome, "a window that already started over is not kept")
	assert.False(t, obs.Recorded)
	assert.Len(t, obs.Windows, 1, "but it is reported")
	assert.Nil(t, obs.Headroom)
	_, err = os.Stat(filepath.Join(f.dir, ".credslots", "state.json"))
	assert.True(t, os.IsNotExist(err))
}

func TestObserveUnauthorized(t *testing.T) {
	t.Run("before expiry marks invalid", func(t *testing.T) {
		f := newFixture(t)
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		writeSlot(t, f.slot("alice"), fresh, "rt-alice")
		f.link(t, "alice")
		obs, err := f.m.Observe("bob", http.StatusUnauthorized, hdr("content-type", "application/json"))
		require.NoError(t, err)
		assert.Equal(t, OutcomeInvalidated, obs.Outcome)
		assert.Equal(t, "the server rejected the token (HTTP 401) while it was valid until 2026-01-01T20:00:00Z", obs.Reason)
		_, err = f.m.SwitchTo("bob", "try")
		require.ErrorIs(t, err, ErrInvalidated)
		journal, err := f.m.Journal()
		require.NoError(t, err)
		assert.Equal(t, opInvalid, journal[len(journal)-1].Op)
	})
	t.Run("within grace is still before expiry", func(t *testing.T) {
		f := newFixture(t)
		writeSlot(t, f.slot("bob"), testNow.Add(time.Minute), "rt-bob")
		obs, err := f.m.Observe("bob", http.StatusUnauthorized, nil)
		require.NoError(t, err)
		assert.Equal(t, OutcomeInvalidated, obs.Outcome)
	})
	for name, expiry := range map[string]time.Time{"after expiry": stale, "at expiry": testNow} {
		t.Run(name+" marks nothing", func(t *testing.T) {
			f := newFixture(t)
			writeSlot(t, f.slot("bob"), expiry, "rt-bob")
			before := snapshot(t, f.dir)
			obs, err := f.m.Observe("bob", http.StatusUnauthorized, nil)
			require.NoError(t, err)
			assert.Equal(t, OutcomeNothing, obs.Outcome)
			assert.Contains(t, obs.Reason, "a refresh is due, not a new login; not marked invalid")
			assert.Equal(t, before, snapshot(t, f.dir), "nothing written")
		})
	}
	t.Run("an unknown expiry marks nothing", func(t *testing.T) {
		f := newFixture(t)
		obs, err := f.m.Observe("bob", http.StatusUnauthorized, nil)
		require.NoError(t, err)
		assert.Equal(t, OutcomeNothing, obs.Outcome)
		assert.Contains(t, obs.Reason, "the slot's expiry is unknown (slot missing: .credentials.json.bob)")
	})
	t.Run("a 401 with usage headers records them too", func(t *testing.T) {
		f := newFixture(t)
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		obs, err := f.m.Observe("bob", http.StatusUnauthorized, hdr("anthropic-ratelimit-unified-5h-utilization", "0.5"))
		require.NoError(t, err)
		assert.Equal(t, OutcomeInvalidated, obs.Outcome)
		assert.True(t, obs.Recorded)
	})
}

func TestObserveErrors(t *testing.T) {
	f := newFixture(t)
	_, err := f.m.Observe("zed", 429, nil)
	require.ErrorIs(t, err, ErrUnknownSubscription)
	_, err = os.Stat(filepath.Join(f.dir, ".credslots", "state.json"))
	assert.True(t, os.IsNotExist(err), "nothing written for an unknown sub")

	require.NoError(t, os.MkdirAll(filepath.Join(f.dir, ".credslots"), 0o700))
	writeFile(t, filepath.Join(f.dir, ".credslots", "state.json"), []byte("{not json"))
	_, err = f.m.Observe("bob", 429, hdr("retry-after", "30"))
	require.Error(t, err, "a state file that cannot be read is not taken as empty")
	assert.Contains(t, err.Error(), "malformed")
	_, err = f.m.Observe("bob", 200, hdr("anthropic-ratelimit-unified-5h-utilization", "0.5"))
	require.Error(t, err)
}

// clock is a test clock that can be moved.
type clock struct{ now time.Time }

func (c *clock) get() time.Time { return c.now }

func TestObserveRanksByHeadroom(t *testing.T) {
	usage := func(u5h, u7d string, reset5h time.Time) http.Header {
		return hdr("anthropic-ratelimit-unified-status", "allowed",
			"anthropic-ratelimit-unified-5h-utilization", u5h, "anthropic-ratelimit-unified-5h-reset", epoch(reset5h),
			"anthropic-ratelimit-unified-7d-utilization", u7d, "anthropic-ratelimit-unified-7d-reset", epoch(testNow.Add(100*time.Hour)))
	}
	setup := func(t *testing.T) (*fixture, *clock) {
		c := &clock{now: testNow}
		f := newFixture(t, WithClock(c.get))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		writeSlot(t, f.slot("alice"), fresh.Add(3*time.Hour), "rt-alice")
		writeSlot(t, f.slot("erik"), fresh.Add(time.Hour), "rt-erik")
		f.link(t, "bob")
		return f, c
	}
	order := func(f *fixture) []string {
		var subs []string
		for _, c := range f.m.Candidates() {
			subs = append(subs, c.Sub)
		}
		return subs
	}

	t.Run("the most headroom beats the latest expiry", func(t *testing.T) {
		f, _ := setup(t)
		_, err := f.m.Observe("alice", 200, usage("0.9", "0.2", testNow.Add(2*time.Hour)))
		require.NoError(t, err)
		_, err = f.m.Observe("erik", 200, usage("0.1", "0.3", testNow.Add(2*time.Hour)))
		require.NoError(t, err)
		_, err = f.m.Observe("bob", 429, hdr(
			"anthropic-ratelimit-unified-status", "rejected", "anthropic-ratelimit-unified-reset", epoch(testNow.Add(time.Hour))))
		require.NoError(t, err)
		assert.Equal(t, []string{"erik", "alice", "bob"}, order(f), "erik 70%% left, alice 10%%, bob resting")
		res, err := f.m.SwitchNext("rate limited")
		require.NoError(t, err)
		assert.Equal(t, "switched to erik", res.Reason)
	})
	t.Run("a sub never observed counts as having all its headroom", func(t *testing.T) {
		f, _ := setup(t)
		_, err := f.m.Observe("alice", 200, usage("0.5", "0.1", testNow.Add(2*time.Hour)))
		require.NoError(t, err)
		assert.Equal(t, []string{"erik", "bob", "alice"}, order(f), "unknown ties at 1, then expiry")
	})
	t.Run("a window that started over counts no more", func(t *testing.T) {
		f, c := setup(t)
		_, err := f.m.Observe("alice", 200, usage("0.95", "0", testNow.Add(time.Hour)))
		require.NoError(t, err)
		assert.Equal(t, []string{"erik", "bob", "alice"}, order(f))
		c.now = testNow.Add(90 * time.Minute)
		assert.Equal(t, []string{"alice", "erik", "bob"}, order(f), "alice's 5h window started over: all of it left, the latest expiry")
		cands := f.m.Candidates()
		require.Len(t, cands[0].Usage, 1)
		assert.Equal(t, "seven_day", cands[0].Usage[0].Name)
		require.NotNil(t, cands[0].Headroom)
		assert.InDelta(t, 1, *cands[0].Headroom, 1e-9)
	})
	t.Run("a partial response keeps the other windows", func(t *testing.T) {
		f, _ := setup(t)
		_, err := f.m.Observe("alice", 200, usage("0.2", "0.7", testNow.Add(2*time.Hour)))
		require.NoError(t, err)
		obs, err := f.m.Observe("alice", 200, hdr("anthropic-ratelimit-unified-5h-utilization", "0.25",
			"anthropic-ratelimit-unified-5h-reset", epoch(testNow.Add(2*time.Hour))))
		require.NoError(t, err)
		require.NotNil(t, obs.Headroom)
		assert.InDelta(t, 0.3, *obs.Headroom, 1e-9, "the 7d window from before still binds")
		state, err := f.m.readState()
		require.NoError(t, err)
		require.Len(t, state["alice"].Usage, 2)
		assert.Equal(t, 0.25, state["alice"].Usage[0].Utilization)
	})
	t.Run("rejected usage sorts an unusable sub too", func(t *testing.T) {
		f, _ := setup(t)
		for _, sub := range []string{"alice", "erik"} {
			require.NoError(t, f.m.Rest(sub, testNow.Add(time.Hour), "429"))
		}
		_, err := f.m.Observe("alice", 200, usage("0.1", "0.1", testNow.Add(2*time.Hour)))
		require.NoError(t, err)
		_, err = f.m.Observe("erik", 200, usage("0.8", "0.1", testNow.Add(2*time.Hour)))
		require.NoError(t, err)
		assert.Equal(t, []string{"bob", "alice", "erik"}, order(f))
	})
}

func TestObserveStateFile(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	_, err := f.m.Observe("bob", 200, hdr("anthropic-ratelimit-unified-5h-utilization", "0.5",
		"anthropic-ratelimit-unified-5h-reset", epoch(testNow.Add(time.Hour))))
	require.NoError(t, err)
	path := filepath.Join(f.dir, ".credslots", "state.json")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	if runtime.GOOS != "windows" {
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, want := range []string{`"usage"`, `"name": "five_hour"`, `"utilization": 0.5`, `"resets_at": "2026-01-01T13:00:00Z"`} {
		assert.Contains(t, string(data), want)
	}
	assert.Empty(t, tempLeftovers(t, filepath.Dir(path)))
	assert.True(t, strings.HasSuffix(string(data), "}\n"))
}

// FuzzReadLimits: whatever the headers say, reading them never panics, every
// window kept has a finite utilization that is not negative, and every value
// not read is listed with why.
func FuzzReadLimits(f *testing.F) {
	f.Add("rejected", "1767276000", "five_hour", "0.42", "1767279600", "25", "120")
	f.Add("ALLOWED", "2026-01-01T14:00:00Z", "x y", "-1", "NaN", "1e400", "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add("", "1e30", "", "Inf", "0x1p-2", "", "99999999999999999999")
	f.Fuzz(func(t *testing.T, status, reset, claim, util, wreset, codex, retry string) {
		h := hdr("anthropic-ratelimit-unified-status", status, "Anthropic-Ratelimit-Unified-Reset", reset,
			"anthropic-ratelimit-unified-representative-claim", claim,
			"anthropic-ratelimit-unified-5h-utilization", util, "anthropic-ratelimit-unified-5h-reset", wreset,
			"x-codex-primary-used-percent", codex, "x-codex-primary-reset-at", wreset, "retry-after", retry)
		lim := readLimits(h, testNow)
		for _, w := range lim.windows {
			if math.IsNaN(w.Utilization) || math.IsInf(w.Utilization, 0) || w.Utilization < 0 {
				t.Fatalf("window %s kept utilization %v", w.Name, w.Utilization)
			}
		}
		if lim.retry != nil && lim.retry.After(testNow.Add(maxObservedRest)) && lim.retryFrom != hdrRetry {
			t.Fatalf("retry %v beyond the cap", lim.retry)
		}
		for _, ig := range lim.ignored {
			if !strings.Contains(ig, ": ") {
				t.Fatalf("ignored without why: %q", ig)
			}
		}
		if h := headroom(lim.windows, testNow); h != nil && (*h < 0 || *h > 1) {
			t.Fatalf("headroom %v", *h)
		}
	})
}
