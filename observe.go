package credslots

// This file turns an API response the caller already holds into the
// package's verdicts: a rate limit rests the sub, a 401 on a token that had
// not expired marks it invalid, and the usage the response reports ranks
// the subs by headroom. The package itself never calls an API.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Outcomes of [Manager.Observe], in [Observation.Outcome].
const (
	// OutcomeRested: the sub rests until [Observation.RestUntil] (see
	// [Manager.Rest]).
	OutcomeRested = "rested"
	// OutcomeInvalidated: the sub was marked invalid (see
	// [Manager.MarkInvalid]).
	OutcomeInvalidated = "invalidated"
	// OutcomeRecorded: only the usage the response reported was kept.
	OutcomeRecorded = "recorded"
	// OutcomeNothing: the response changed nothing; the reason says why.
	OutcomeNothing = "nothing"
)

// DefaultRetryAfter is how long [Manager.Observe] rests a sub after an HTTP
// 429 (or a rejection) that says neither when the limit resets nor
// Retry-After.
const DefaultRetryAfter = time.Minute

// maxObservedRest bounds a rest read off a response: a longer one is cut
// to this (the longest window a provider publishes is a month).
const maxObservedRest = 31 * 24 * time.Hour

// Observation is what [Manager.Observe] concluded from one response.
type Observation struct {
	Sub    string `json:"sub"`
	Status int    `json:"status"` // the HTTP status observed
	// Outcome is [OutcomeRested], [OutcomeInvalidated], [OutcomeRecorded]
	// or [OutcomeNothing].
	Outcome string `json:"outcome"`
	// Reason says what was concluded and why, in one line; the rest or the
	// invalid mark is journaled with it.
	Reason string `json:"reason"`
	// RestUntil is set when the sub was rested.
	RestUntil *time.Time `json:"rest_until"`
	// LimitStatus is anthropic-ratelimit-unified-status as sent:
	// "allowed", "allowed_warning" or "rejected"; "" when absent.
	LimitStatus string `json:"limit_status"`
	// RepresentativeClaim is the window the limit status is about
	// (anthropic-ratelimit-unified-representative-claim: "five_hour",
	// "seven_day", ...); "" when absent.
	RepresentativeClaim string `json:"representative_claim"`
	// Windows are the usage windows the response reported.
	Windows []UsageWindow `json:"windows"`
	// Recorded is true when Windows were kept in the state file.
	Recorded bool `json:"recorded"`
	// Headroom is the sub's headroom after this observation (1 minus the
	// highest utilization among its five-hour and seven-day windows, or
	// Codex CLI's primary and secondary, that have not started over); nil
	// when unknown.
	Headroom *float64 `json:"headroom"`
	// Ignored lists each rate-limit header that was present but could not
	// be read, with why; such a header is treated as absent.
	Ignored []string `json:"ignored"`
}

// Observe takes one API response that sub's login received (its HTTP status
// and headers) and records what it says, so that [Manager.SwitchNext] and
// [Manager.Candidates] act on it. It never calls an API. In order:
//
//   - 401: when sub's slot expiry is still in the future, the server
//     rejected a token it should have taken: [Manager.MarkInvalid]. After the
//     expiry (or with the expiry unknown) it marks nothing: a refresh is due,
//     not a new login.
//   - anthropic-ratelimit-unified-status "rejected" (whatever the HTTP
//     status): [Manager.Rest] until anthropic-ratelimit-unified-reset, else
//     the representative window's reset, else the latest reset of a rejected
//     window (each passed over when already past), else Retry-After, else
//     [DefaultRetryAfter].
//   - 429: until the latest reset of a Codex CLI window used up (100% or
//     more), else retry-after-ms, else Retry-After (seconds or an HTTP
//     date), else [DefaultRetryAfter].
//
// A reset that is not after now is passed over for Retry-After, else
// [DefaultRetryAfter]: the response says the limit holds now. A Retry-After
// that is not after now rests nothing. A rest longer than 31 days is
// cut to 31 days; a standing rest that ends later is kept, never shortened. Every response's usage windows (Anthropic's
// anthropic-ratelimit-unified-{5h,7d,7d_oi,overage}-{utilization,reset,status}
// and Codex CLI's x-codex-{primary,secondary}-{used-percent,window-minutes,reset-at})
// are kept in the state file, without a journal record, and rank the subs
// by headroom. Header names are matched without regard to case, whether h
// was canonicalized or not; a value that cannot be read is listed in
// [Observation.Ignored] and treated as absent. A utilization above 1 (past
// the cap) is kept and leaves no headroom; a negative one is ignored.
//
// An unknown sub returns an error wrapping [ErrUnknownSubscription]; a state
// file that cannot be read or written, or a lock not taken in time, returns
// that error, with the observation made so far.
func (m *Manager) Observe(sub string, status int, h http.Header) (Observation, error) {
	return m.observe(context.Background(), sub, status, h)
}

// ObserveContext is [Manager.Observe] whose waits for the package's lock
// end with ctx: a done ctx records nothing and returns an error wrapping
// ctx.Err(), with the observation made so far.
func (m *Manager) ObserveContext(ctx context.Context, sub string, status int, h http.Header) (Observation, error) {
	if err := notStarted(ctx); err != nil {
		return newObservation(sub, status), err
	}
	return m.observe(ctx, sub, status, h)
}

// newObservation is an observation of status for sub that found nothing yet.
func newObservation(sub string, status int) Observation {
	return Observation{Sub: sub, Status: status, Outcome: OutcomeNothing, Windows: []UsageWindow{}, Ignored: []string{}}
}

func (m *Manager) observe(ctx context.Context, sub string, status int, h http.Header) (Observation, error) {
	obs := newObservation(sub, status)
	if !m.knows(sub) {
		return obs, fmt.Errorf("credslots: %s: %w", m.unknownSub(sub), ErrUnknownSubscription)
	}
	now := m.cfg.now().UTC()
	lim := readLimits(h, now)
	obs.LimitStatus, obs.RepresentativeClaim, obs.Ignored = lim.status, lim.claim, lim.ignored
	if lim.windows != nil {
		obs.Windows = lim.windows
	}

	if err := m.observeVerdict(ctx, sub, status, lim, now, &obs); err != nil {
		return obs, err
	}
	var usage []UsageWindow
	if seen := currentUsage(lim.windows, now); len(seen) > 0 {
		err := m.changeState(ctx, sub, JournalEntry{}, func(st *subState) {
			st.Usage = mergeUsage(st.Usage, seen, now)
			usage = st.Usage
		})
		if err != nil {
			return obs, err
		}
		obs.Recorded = true
		if obs.Outcome == OutcomeNothing {
			obs.Outcome = OutcomeRecorded
		}
		obs.Reason += "; usage recorded: " + usageSummary(seen)
	} else if state, err := m.readState(); err == nil {
		usage = state[sub].Usage
	}
	obs.Headroom = headroom(usage, now)
	level := slog.LevelDebug
	if obs.Outcome == OutcomeRested || obs.Outcome == OutcomeInvalidated {
		level = slog.LevelInfo
	}
	m.cfg.logger.Log(context.Background(), level, "observed", "sub", sub, "status", status, "outcome", obs.Outcome, "reason", obs.Reason)
	return obs, nil
}

// observeVerdict decides whether the response rests or invalidates sub and
// does it; otherwise it says in obs why not.
func (m *Manager) observeVerdict(ctx context.Context, sub string, status int, lim responseLimits, now time.Time, obs *Observation) error {
	switch {
	case status == http.StatusUnauthorized:
		return m.observeUnauthorized(ctx, sub, now, obs)
	case lim.status == statusRejected:
		what := "rate limit rejected"
		if lim.claim != "" {
			what += " (" + lim.claim + ")"
		}
		if lim.overage == "allowed" || lim.overage == "allowed_warning" {
			what += ", usage past it billed as overage"
		}
		until, from, ok := lim.rejectedReset(now)
		return m.restByReset(ctx, sub, what, until, from, ok, lim, now, obs)
	case status == http.StatusTooManyRequests:
		what := "HTTP 429"
		until, from, ok := lim.codexExhausted()
		if ok {
			what += ": usage limit reached"
		}
		return m.restByReset(ctx, sub, what, until, from, ok, lim, now, obs)
	}
	switch {
	case lim.status != "":
		obs.Reason = fmt.Sprintf("HTTP %d: rate limit %s", status, lim.status)
	default:
		obs.Reason = fmt.Sprintf("HTTP %d: nothing to act on", status)
	}
	return nil
}

// restByReset rests sub until the reset the response named (ok), when that
// is in the future; else as restByRetryAfter. A reset already past, on a
// response that says the limit holds now, is the two clocks disagreeing,
// not the limit lifted: it is said in the reason and passed over.
func (m *Manager) restByReset(ctx context.Context, sub, what string, until time.Time, from string, ok bool, lim responseLimits, now time.Time, obs *Observation) error {
	if ok && until.After(now) {
		return m.observeRest(ctx, sub, what, until, from, now, obs)
	}
	if ok {
		what += fmt.Sprintf(" (its reset %s, %s, already past)", formatTime(until), from)
	}
	return m.restByRetryAfter(ctx, sub, what, lim, now, obs)
}

// restByRetryAfter rests sub for Retry-After, else for DefaultRetryAfter.
func (m *Manager) restByRetryAfter(ctx context.Context, sub, what string, lim responseLimits, now time.Time, obs *Observation) error {
	if lim.retry != nil {
		return m.observeRest(ctx, sub, what, *lim.retry, lim.retryFrom, now, obs)
	}
	return m.observeRest(ctx, sub, what, now.Add(DefaultRetryAfter), "no reset or Retry-After: the default", now, obs)
}

// observeRest rests sub until until, unless that is not in the future.
func (m *Manager) observeRest(ctx context.Context, sub, what string, until time.Time, from string, now time.Time, obs *Observation) error {
	if !until.After(now) {
		obs.Reason = fmt.Sprintf("%s, but its reset %s (%s) is not in the future: not rested", what, formatTime(until), from)
		return nil
	}
	if limit := now.Add(maxObservedRest); until.After(limit) {
		until, from = limit, from+", cut to 31 days"
	}
	until = until.UTC()
	reason := fmt.Sprintf("%s until %s (%s)", what, formatTime(until), from)
	// A standing rest is never shortened: a 429 with Retry-After: 60 on a
	// login whose week is spent does not bring it back in a minute. It is
	// weighed under the package's lock, against the rest another process
	// may have written a moment ago.
	var standing *time.Time
	changed, err := m.restUnless(ctx, sub, until, reason, func(st subState) bool {
		if st.resting(now) && !st.RestUntil.Before(until) {
			standing = st.RestUntil
			return true
		}
		return false
	})
	if err != nil {
		return err
	}
	if !changed {
		obs.Outcome, obs.RestUntil = OutcomeRested, standing
		obs.Reason = fmt.Sprintf("%s; already resting until %s", reason, formatTime(*standing))
		return nil
	}
	obs.Outcome, obs.RestUntil, obs.Reason = OutcomeRested, &until, reason
	return nil
}

// observeUnauthorized marks sub invalid when the token it was using had
// not expired: its slot's, or, while the login is live in a leased seat or
// a drifted live file the CLI refreshed, that one's (see rejectedLogin).
func (m *Manager) observeUnauthorized(ctx context.Context, sub string, now time.Time, obs *Observation) error {
	c := m.rejectedLogin(sub)
	switch {
	case !c.hasExpiry():
		_, why := m.SlotIsFresh(sub)
		obs.Reason = fmt.Sprintf("HTTP 401, but the slot's expiry is unknown (%s): not marked invalid", why)
		return nil
	case !c.expiry.After(now):
		obs.Reason = fmt.Sprintf("HTTP 401 after the token expired at %s: a refresh is due, not a new login; not marked invalid", formatTime(c.expiry))
		return nil
	}
	reason := fmt.Sprintf("the server rejected the token (HTTP 401) while it was valid until %s", formatTime(c.expiry))
	if err := m.markRejected(ctx, sub, c, reason); err != nil {
		return err
	}
	obs.Outcome, obs.Reason = OutcomeInvalidated, reason
	return nil
}
