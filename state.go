package credslots

// This file keeps what the caller learned about each sub from the server:
// resting after a quota or rate limit, invalid after the server rejected its
// token. The state lives in "<creds dir>/.credslots/state.json"; the journal
// records each change to it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gptme/credslots/internal/credfile"
)

// stateName is the state file's name in the private directory.
const stateName = "state.json"

// subState is what is known of one sub beyond its files.
type subState struct {
	RestUntil  *time.Time `json:"rest_until,omitempty"`
	RestReason string     `json:"rest_reason,omitempty"`
	Invalid    bool       `json:"invalid,omitempty"`
	InvalidFP  string     `json:"invalid_fingerprint,omitempty"`
	// InvalidAlso are the other logins of the same account the mark
	// stands on, until a new login: the slot's older one when the live
	// file's was rejected, and those heals and restores wrote since the
	// rejection, newest last.
	InvalidAlso []string `json:"invalid_also,omitempty"`
	// InvalidLogins are, where the identity is not the login (Codex CLI's
	// account_id, which every login of the account has), the logins (see
	// credential.login) the mark was placed on: the rejected one and the
	// slot's then. A capture of any other, a new login of the same
	// account, clears the mark.
	InvalidLogins []string `json:"invalid_logins,omitempty"`
	InvalidReason string   `json:"invalid_reason,omitempty"`
	// Usage is the usage windows last observed (see [Manager.Observe]).
	Usage []UsageWindow `json:"usage,omitempty"`
}

// readState reads the state file; a missing one is empty. A state file
// that cannot be read or parsed is an error, never taken as empty: it may
// hold a rejection that must keep standing.
func (m *Manager) readState() (map[string]subState, error) {
	state := map[string]subState{}
	data, err := m.cfg.fs.ReadFile(m.statePath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return state, nil
	case err != nil:
		return nil, fmt.Errorf("credslots: read state file: %w", err)
	}
	if err := json.Unmarshal(data, &state); err != nil {
		return nil, fmt.Errorf("credslots: state file %s is malformed; fix or remove it", m.statePath)
	}
	return state, nil
}

// maxStateReason bounds a reason kept in the state file.
const maxStateReason = 512

// clip shortens s to at most n bytes, at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// resting reports whether st rests sub at now.
func (st subState) resting(now time.Time) bool {
	return st.RestUntil != nil && st.RestUntil.After(now)
}

// invalidAt reports whether st marks the login with fingerprint fp invalid:
// only the identity that the server rejected is; a new login clears it.
func (st subState) invalidAt(fp string) bool {
	if !st.Invalid {
		return false
	}
	if st.InvalidFP == fp {
		return true
	}
	for _, also := range st.InvalidAlso {
		if also == fp {
			return true
		}
	}
	return false
}

// maxInvalidAlso bounds the logins a mark follows.
const maxInvalidAlso = 16

// changeState applies update to sub's state under the package's lock, writes
// the state file atomically and journals the change as one done record (an
// entry without an op, a usage reading, is not journaled).
func (m *Manager) changeState(ctx context.Context, sub string, e JournalEntry, update func(*subState)) error {
	_, err := m.changeStateIf(ctx, sub, e, nil, update)
	return err
}

// changeStateIf is changeState made only when keep, given sub's state as
// read under the package's lock, is false: changed reports whether it was.
func (m *Manager) changeStateIf(ctx context.Context, sub string, e JournalEntry, keep func(subState) bool, update func(*subState)) (changed bool, err error) {
	if !m.knows(sub) {
		return false, fmt.Errorf("credslots: %s: %w", m.unknownSub(sub), ErrUnknownSubscription)
	}
	mu, err := m.beginOwnMutation(ctx) // only the package's files change
	if err != nil {
		return false, err
	}
	defer mu.end()
	if keep != nil {
		state, err := m.readState()
		if err != nil {
			return false, err
		}
		if keep(state[sub]) {
			return false, nil
		}
	}
	if err := m.updateStateLocked(sub, update); err != nil {
		return false, err
	}
	if e.Op == "" {
		return true, nil // usage readings are kept, not journaled
	}
	e.Time, e.Phase, e.Sub = m.cfg.now(), phaseDone, sub
	if err := m.record(e); err != nil {
		return true, err
	}
	m.announce(mu, Change{Op: e.Op, Sub: sub, Reason: e.Reason})
	return true, nil
}

// updateStateLocked applies update to sub's state and writes the state
// file atomically, for a caller holding the package's lock.
func (m *Manager) updateStateLocked(sub string, update func(*subState)) error {
	state, err := m.readState()
	if err != nil {
		return err
	}
	st := state[sub]
	update(&st)
	state[sub] = st
	data, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return fmt.Errorf("credslots: encode state: %w", err)
	}
	return m.writeFile(m.statePath, append(data, '\n'))
}

// keepMarkLocked extends sub's invalid mark from the login with
// fingerprint from to the one with fingerprint to: a heal or restore of the same
// account's login keeps the server's rejection standing; only a new login
// clears it. It writes nothing when the mark is not on from.
func (m *Manager) keepMarkLocked(sub, from, to string) error {
	if from == to || to == "" {
		return nil
	}
	state, err := m.readState()
	if err != nil {
		return err
	}
	if st := state[sub]; !st.invalidAt(from) || st.invalidAt(to) {
		return nil
	}
	return m.updateStateLocked(sub, func(st *subState) {
		st.InvalidAlso = append(st.InvalidAlso, to)
		if n := len(st.InvalidAlso); n > maxInvalidAlso {
			st.InvalidAlso = st.InvalidAlso[n-maxInvalidAlso:]
		}
	})
}

// Rest records that the caller saw sub hit a quota or rate limit: until
// then, [Manager.SwitchNext] passes it over ([Manager.SwitchTo] still
// switches to it when asked by name). A time not after now ends a rest. It
// is journaled, and [Manager.Status] and [Manager.Candidates] show it. An
// unknown sub returns an error wrapping [ErrUnknownSubscription].
func (m *Manager) Rest(sub string, until time.Time, reason string) error {
	return m.rest(context.Background(), sub, until, reason)
}

// RestContext is [Manager.Rest] whose wait for the package's lock ends with
// ctx: a done ctx records nothing and returns an error wrapping ctx.Err().
func (m *Manager) RestContext(ctx context.Context, sub string, until time.Time, reason string) error {
	if err := notStarted(ctx); err != nil {
		return err
	}
	return m.rest(ctx, sub, until, reason)
}

func (m *Manager) rest(ctx context.Context, sub string, until time.Time, reason string) error {
	_, err := m.restUnless(ctx, sub, until, reason, nil)
	return err
}

// restUnless is rest made only when keep (nil: always), given sub's state
// under the package's lock, is false; rested reports whether it was.
func (m *Manager) restUnless(ctx context.Context, sub string, until time.Time, reason string, keep func(subState) bool) (rested bool, err error) {
	until, reason = until.UTC(), clip(reason, maxStateReason)
	return m.changeStateIf(ctx, sub, JournalEntry{Op: opRest, Reason: reason, Until: &until}, keep, func(st *subState) {
		st.RestUntil, st.RestReason = &until, reason
	})
}

// MarkInvalid records that the server rejected sub's token (an HTTP 401
// while its expiry was still in the future). The login marked is the one
// the server saw: the live file's, when the live file is sub's drifted copy
// (the CLI refreshed since the journal's last change to sub), and then the
// slot's older login of the same account too; else the slot's. Heals,
// restores and a lease's write-backs of the same account's login carry the
// mark;
// until a new login replaces it, [Manager.SwitchTo] refuses it with
// [ErrInvalidated] and [Manager.SwitchNext] passes it over. It is journaled,
// and [Manager.Status] and [Manager.Candidates] show it. An unknown sub
// returns an error wrapping [ErrUnknownSubscription].
func (m *Manager) MarkInvalid(sub, reason string) error {
	return m.markInvalid(context.Background(), sub, reason)
}

// MarkInvalidContext is [Manager.MarkInvalid] whose wait for the package's
// lock ends with ctx: a done ctx records nothing and returns an error
// wrapping ctx.Err().
func (m *Manager) MarkInvalidContext(ctx context.Context, sub, reason string) error {
	if err := notStarted(ctx); err != nil {
		return err
	}
	return m.markInvalid(ctx, sub, reason)
}

func (m *Manager) markInvalid(ctx context.Context, sub, reason string) error {
	if !m.knows(sub) {
		return fmt.Errorf("credslots: %s: %w", m.unknownSub(sub), ErrUnknownSubscription)
	}
	return m.markRejected(ctx, sub, m.rejectedLogin(sub), reason)
}

// markRejected marks rejected, sub's login the server rejected (see
// rejectedLogin), invalid: read once by the caller, so that a refresh
// since cannot move the mark onto a login the server never saw.
func (m *Manager) markRejected(ctx context.Context, sub string, rejected credential, reason string) error {
	reason = clip(reason, maxStateReason)
	fp := rejected.fingerprint
	// The slot, read once. A login in it that outlasts the rejected one
	// was written back since (a lease's refresh): the server never saw it,
	// and the mark does not stand on it.
	slot := m.readAt(m.slots[sub], credfile.All)
	if rejected.hasExpiry() && slot.hasExpiry() && slot.expiry.After(rejected.expiry) {
		slot = credential{}
	}
	var also []string
	if slot.fingerprint != "" && slot.fingerprint != fp {
		// The slot holds the same account's older login (the live file
		// is its refresh): the mark stands on it too.
		also = []string{slot.fingerprint}
	}
	var logins []string
	if rejected.login != "" && rejected.login != fp {
		// The identity is not the login: the mark names the logins it
		// stands on, so that a capture can tell a new login of the account.
		logins = []string{rejected.login}
		if slot.login != "" && slot.login != rejected.login {
			logins = append(logins, slot.login)
		}
	}
	return m.changeState(ctx, sub, JournalEntry{Op: opInvalid, Reason: reason, Fingerprint: fp}, func(st *subState) {
		st.Invalid, st.InvalidFP, st.InvalidReason, st.InvalidAlso, st.InvalidLogins = true, fp, reason, also, logins
	})
}

// rejectedLogin is the login of sub that the server just rejected: its
// seat's, while sub is leased (the login is live there); the live file's,
// when the live file is sub's drifted copy (the CLI refreshed and the
// journal says sub is live); else the slot's.
func (m *Manager) rejectedLogin(sub string) credential {
	if info, held := m.heldLease(sub); held && info.Seat != "" {
		if cred := m.readAt(m.seatFile(info.Seat), credfile.All); cred.fingerprint != "" {
			return cred
		}
	}
	live, err := inspect(m.cfg.fs, m.live)
	if err == nil && live.Kind == kindFile {
		if _, inSlot := m.slotWithHash(live.Hash); !inSlot {
			if owner, why := m.activeFor(live); why == "" && owner == sub {
				if cred := m.cfg.format.parse(live.Data); cred.fingerprint != "" {
					return cred
				}
			}
		}
	}
	return m.readAt(m.slots[sub], credfile.All)
}

// Candidate is one configured sub as [Manager.SwitchNext] sees it.
type Candidate struct {
	Sub         string            `json:"sub"`
	Exists      bool              `json:"exists"`
	Fresh       bool              `json:"fresh"`
	FreshReason string            `json:"fresh_reason"`
	Expiry      *time.Time        `json:"expiry"` // nil when unknown
	Identity    IdentityDriftInfo `json:"identity"`
	// RestingUntil is set while the sub rests (see [Manager.Rest]).
	RestingUntil *time.Time `json:"resting_until"`
	RestReason   string     `json:"rest_reason"`
	// Invalid is true while the server's rejection of this login stands
	// (see [Manager.MarkInvalid]).
	Invalid       bool   `json:"invalid"`
	InvalidReason string `json:"invalid_reason"`
	Active        bool   `json:"active"`
	// Usage is the usage windows last observed that have not started over
	// (see [Manager.Observe]); Headroom is what they leave of the plan,
	// nil when unknown.
	Usage    []UsageWindow `json:"usage"`
	Headroom *float64      `json:"headroom"`
	// Lease is the sub's held lease (see [Manager.Lease]); nil when none.
	Lease *LeaseInfo `json:"lease,omitempty"`
	// Usable is true when the sub could be switched to: its slot exists,
	// is fresh, its identity has not drifted, and it is neither resting nor
	// invalid.
	Usable bool `json:"usable"`
	// PassedOver says why it is not usable; "" when it is.
	PassedOver string `json:"passed_over"`
}

// Candidates returns every configured sub with its verdicts, ranked best
// first: usable before unusable, then the most headroom (a sub whose usage
// was never observed counts as having all of it), then the latest expiry
// first, then configured order. It reads each slot, sidecar and the state
// file once and changes nothing.
func (m *Manager) Candidates() []Candidate {
	state, serr := m.readState()
	active, _ := m.ActiveSubscription()
	now := m.cfg.now()
	out := make([]Candidate, 0, len(m.subs))
	order := make(map[string]int, len(m.subs))
	for i, sub := range m.subs {
		order[sub] = i
		path := m.slots[sub]
		data, rerr := m.cfg.fs.ReadFile(path)
		var cred credential
		if rerr == nil {
			cred = m.cfg.format.parse(data)
		}
		c := Candidate{Sub: sub, Exists: !isMissing(rerr), Active: sub == active}
		c.Fresh, c.FreshReason = freshnessOf(m.cfg.format, path, cred, rerr, m.cfg.grace, now)
		if cred.hasExpiry() {
			exp := cred.expiry
			c.Expiry = &exp
		}
		id, ierr := m.identityVerdict(sub, cred.fingerprint)
		c.Identity = id
		st := state[sub]
		c.Usage, c.Headroom = currentUsage(st.Usage, now), headroom(st.Usage, now)
		if st.resting(now) {
			c.RestingUntil, c.RestReason = st.RestUntil, st.RestReason
		}
		if info, held := m.heldLease(sub); held {
			c.Lease = &info
		}
		c.Invalid = st.invalidAt(cred.fingerprint)
		if c.Invalid {
			c.InvalidReason = st.InvalidReason
		}
		switch {
		case serr != nil:
			c.PassedOver = "state unknown: " + serr.Error()
		case !c.Exists:
			c.PassedOver = "slot missing"
		case !c.Fresh:
			c.PassedOver = c.FreshReason
		case ierr != nil:
			c.PassedOver = "fingerprint unreadable: " + readCause(ierr)
		case id.Drift:
			c.PassedOver = "identity drift: " + id.Reason
		case c.Invalid:
			c.PassedOver = "invalidated: " + st.InvalidReason
		case c.RestingUntil != nil:
			c.PassedOver = fmt.Sprintf("resting until %s: %s", formatTime(*c.RestingUntil), st.RestReason)
		case c.Lease != nil:
			c.PassedOver = leaseNote(*c.Lease)
		}
		c.Usable = c.PassedOver == ""
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Usable != b.Usable {
			return a.Usable
		}
		if ha, hb := headroomOr1(a.Headroom), headroomOr1(b.Headroom); ha != hb {
			return ha > hb
		}
		if (a.Expiry == nil) != (b.Expiry == nil) {
			return a.Expiry != nil
		}
		if a.Expiry != nil && !a.Expiry.Equal(*b.Expiry) {
			return a.Expiry.After(*b.Expiry)
		}
		return order[a.Sub] < order[b.Sub]
	})
	return out
}

// headroomOr1 ranks an unknown headroom as a whole one.
func headroomOr1(h *float64) float64 {
	if h == nil {
		return 1
	}
	return *h
}

// SwitchNext switches to the best usable sub other than the active one, in
// the order of [Manager.Candidates], with [Manager.SwitchTo]'s checks. A
// candidate that SwitchTo refuses for a reason of its own (it went stale,
// drifted, or was rested meanwhile: a rest is checked again under the
// package's lock) is passed over for the next; a refusal that is not the
// candidate's (busy-signals, a drifted live file, a lock) is returned as is.
// When no candidate is left it refuses with [ErrNoCandidate], the reason
// listing why each sub was passed over.
func (m *Manager) SwitchNext(reason string, opts ...SwitchOption) (SwitchResult, error) {
	return m.switchNext(context.Background(), reason, opts...)
}

// switchNext is [Manager.SwitchNext] with a context for the lock waits.
func (m *Manager) switchNext(ctx context.Context, reason string, opts ...SwitchOption) (SwitchResult, error) {
	var why []string
	from := ""
	for _, c := range m.Candidates() {
		switch {
		case c.Active:
			from = c.Sub
			why = append(why, c.Sub+": active")
			continue
		case !c.Usable:
			why = append(why, c.Sub+": "+c.PassedOver)
			continue
		}
		res, err := m.SwitchToContext(ctx, c.Sub, reason, append(opts[:len(opts):len(opts)], asNext)...)
		if err == nil || !candidateRefusal(err) {
			return res, err
		}
		why = append(why, c.Sub+": "+res.Reason)
	}
	res, err := m.refuse(ErrNoCandidate, "", "no usable subscription to switch to: "+strings.Join(why, "; "), nil)
	res.From = from
	return res, err
}

// asNext marks a switch as SwitchNext's (switchConfig.next).
func asNext(c *switchConfig) { c.next = true }

// candidateRefusal reports whether SwitchTo refused because of the target
// itself, so that the next candidate may do.
func candidateRefusal(err error) bool {
	for _, e := range []error{ErrSlotMissing, ErrNotFresh, ErrIdentityDrift, ErrInvalidated, ErrLeased, errResting} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// invalidation returns why sub's login stands rejected, or "" when it does
// not (fp is the slot's current fingerprint), or the error reading the
// state file.
func (m *Manager) invalidation(sub, fp string) (string, error) {
	state, err := m.readState()
	if err != nil {
		return "", err
	}
	if st := state[sub]; st.invalidAt(fp) {
		return st.InvalidReason, nil
	}
	return "", nil
}
