package credslots

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/gptme/credslots/internal/jsonscan"
)

// SwitchResult is the outcome of [Manager.SwitchTo], [Manager.SwitchNext],
// [Manager.HealDriftTo], [Manager.HealDrift] and [Manager.Adopt].
type SwitchResult struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason"` // human-readable, for logs
	// Sub is the sub the change was for: the target of a switch (the one
	// SwitchNext picked), the sub healed into (the one HealDrift found in
	// the journal) or adopted as; "" when none was decided.
	Sub string `json:"sub"`
	// From is the sub the live path held before: for a switch the slot the
	// symlink pointed at ("" when it was a file, missing or no slot's); for
	// a heal the healed sub itself (the live file was its refreshed copy);
	// "" for an adopt (a login no slot held).
	From          string   `json:"from"`
	DeferredLocks []string `json:"deferred_locks,omitempty"` // the lock guard's answer when deferred
}

// switchConfig is what SwitchOptions build.
type switchConfig struct {
	force bool
	adopt bool // set by Adopt: a new login, checked against every slot's identity
	next  bool // set by SwitchNext: a rest is a refusal too, checked under the lock
}

// errResting is SwitchNext's refusal of a candidate rested since it was
// ranked (by another process, a moment ago): the next candidate may do.
var errResting = errors.New("resting")

// SwitchOption modifies one [Manager.SwitchTo] or [Manager.HealDriftTo] call.
type SwitchOption func(*switchConfig)

// Force overrides the lock guard and the identity and live-drift refusals.
// It never overrides freshness: an expired or unreadable slot is refused even
// when forced. A forced switch away from a drifted live file first keeps that
// file as "<live path>.prev".
func Force() SwitchOption {
	return func(c *switchConfig) { c.force = true }
}

func applySwitchOptions(opts []SwitchOption) switchConfig {
	var c switchConfig
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	return c
}

// SwitchTo points the live symlink at sub's slot. It checks, in order, and
// the first failing check decides:
//
//  1. sub is configured, else [ErrUnknownSubscription];
//  2. unless [Force], the lock guard reports no busy-signal, else [ErrDeferred]
//     with DeferredLocks set;
//  3. the sub's login is not leased to a seat (see [Manager.Lease]), else
//     [ErrLeased], even with [Force]; the slot file exists, else
//     [ErrSlotMissing];
//  4. the slot is fresh (see [SlotIsFresh]), else [ErrNotFresh], even with [Force];
//  5. unless [Force], the sub's login was not marked invalid (see
//     [Manager.MarkInvalid]), else [ErrInvalidated], and its identity has not drifted (see
//     [Manager.DetectSlotIdentityDrift]), else [ErrIdentityDrift]: switching would
//     re-capture the fingerprint and erase the evidence;
//  6. unless [Force], the live path is not a regular file that matches no slot
//     (a token that exists nowhere else), else [ErrLiveDrifted]; with [Force] that
//     file is first kept as "<live path>.prev".
//
// Checks 3 to 6 and the change run under the package's lock and the CLI's
// own locks (see [WithCLILocks]); a CLI lock found taken over abandons the
// change with [ErrLockLost]. The change is journaled: an intent record
// first, a done or failed record after. With the ClaudeCode format the
// target slot first takes the live file's account-independent state (see
// [WithCarryState]). Then the live path is replaced by a relative symlink to
// the slot, atomically, so that no reader ever sees it missing; if the live
// path changed after it was checked, the newer entry is left in place and
// the error wraps [ErrLiveChanged]. For Claude Code the account remembered
// for sub is spliced into .claude.json. Finally the slot's fingerprint is
// captured (a failure does not undo the change: it is added to Reason,
// journaled and reported by [Manager.Status]) and the on-switch hook runs.
//
// err is nil exactly when OK is true. A refusal's error contains Reason and
// wraps one sentinel, and changes nothing on disk; an I/O failure returns
// the underlying error and leaves the live path as it was, except when the
// directory sync after the rename failed: the error then says the live path
// was changed, and the journal records the switch as done.
func (m *Manager) SwitchTo(sub, reason string, opts ...SwitchOption) (SwitchResult, error) {
	return m.SwitchToContext(context.Background(), sub, reason, opts...)
}

// SwitchToContext is [Manager.SwitchTo] whose waits for the locks end with
// ctx: a ctx done before or while it waits changes nothing and returns an
// error wrapping ctx.Err().
func (m *Manager) SwitchToContext(ctx context.Context, sub, reason string, opts ...SwitchOption) (SwitchResult, error) {
	if err := ctx.Err(); err != nil {
		return m.fail(sub, fmt.Errorf("credslots: switch to %s not started: %w", sub, err))
	}
	sc := applySwitchOptions(opts)
	if !m.knows(sub) {
		return m.refuse(ErrUnknownSubscription, sub, m.unknownSub(sub), nil)
	}
	if locks := m.busy(sc); len(locks) > 0 {
		why := fmt.Sprintf("deferred: active lock(s) %s; would switch to %s (%s)", strings.Join(locks, ", "), sub, reason)
		return m.refuse(ErrDeferred, sub, why, locks)
	}

	// Before the first change there is no lock file: a first look without
	// locks makes a refusal change nothing on disk. The checks under the
	// locks decide.
	if m.firstChange() {
		if _, r := m.checkSwitch(sub, sc, m.leasesMayExist()); r != nil {
			return m.deny(sub, r)
		}
	}
	if m.locks.leasesSeen.Load() {
		// A seat to recover first: its locks are waited for before any
		// is taken at home.
		if err := m.awaitLeftSeat(ctx, sub); err != nil {
			return m.fail(sub, err)
		}
	}
	mu, err := m.beginMutationContext(ctx)
	if err != nil {
		return m.fail(sub, err)
	}
	defer mu.end()
	// Every lease lock and record lives in the leases directory, which is
	// made, and a lease taken or recovered, only under the package's lock,
	// which this change holds: without the directory sub was never leased,
	// and one lstat stands for the probes of its record and its lock.
	leases := m.leasesMayExist()
	if leases {
		if err := m.recoverSub(sub); err != nil {
			return m.fail(sub, err)
		}
	}
	plan, r := m.checkSwitch(sub, sc, leases)
	if r != nil {
		return m.deny(sub, r)
	}
	if !plan.side.done {
		// Forced: the checks did not read the sidecar; the splice and the
		// capture read it here, once. Sidecars are written only under the
		// package's lock, which the change holds to its end.
		plan.side = m.readSidecar(sub)
	}
	c, err := m.beginChange(mu, opSwitch, sub, plan.from, reason, plan.fingerprint)
	if err != nil {
		return m.fail(sub, err)
	}
	err = c.finish(m.switchLocked(mu, c, sub, plan))
	if err != nil {
		return m.fail(sub, err)
	}
	done := "switched to " + sub
	if plan.keepLive {
		// The only copy of the drifted live file's login: say where it went.
		kept, owner := m.rel(m.live+prevSuffix), plan.liveOwner
		if owner == "" {
			owner = "NAME" // whose login it is, the journal cannot tell: the operator names it
		}
		done += fmt.Sprintf("; the live file matched no slot: its login is kept as %s (restore it into its sub's slot: credslots restore %s %s)",
			kept, kept, owner)
	}
	res, err := m.changed(sub, reason, done, plan.fingerprint, false, plan.side)
	res.From = plan.from
	m.announce(mu, Change{Op: opSwitch, Sub: sub, From: plan.from, Reason: reason})
	return res, err
}

// switchPlan is what checks 3 to 6 of a switch found.
type switchPlan struct {
	slot        []byte      // the target slot's content
	fingerprint string      // its identity
	live        entry       // what the live path held
	keepLive    bool        // a drifted live file to keep as the live backup (forced)
	liveOwner   string      // whose login that file holds, per the journal; "" when unknown
	from        string      // the sub the live path pointed at
	side        sidecarRead // the sub's sidecar, read once for the whole switch
}

// refusal is why a change is not made: a sentinel with its reason, or an
// error met while checking.
type refusal struct {
	sentinel error
	reason   string
	locks    []string // the busy-signals, for ErrDeferred
	err      error
}

// deny returns a refusal's result.
func (m *Manager) deny(sub string, r *refusal) (SwitchResult, error) {
	if r.err != nil {
		return m.fail(sub, r.err)
	}
	return m.refuse(r.sentinel, sub, r.reason, r.locks)
}

// checkSwitch runs checks 3 to 6 of [Manager.SwitchTo]; it only reads.
// leases is false when the leases directory does not exist: then no lease
// lock needs probing.
func (m *Manager) checkSwitch(sub string, sc switchConfig, leases bool) (switchPlan, *refusal) {
	if leases {
		if info, held := m.heldLease(sub); held {
			// Even forced: a login is live in one place at a time.
			return switchPlan{}, &refusal{sentinel: ErrLeased,
				reason: fmt.Sprintf("refusing to switch to %s: its login is %s", sub, leaseNote(info))}
		}
	}
	slot := m.slots[sub]
	data, rerr := m.cfg.fs.ReadFile(slot)
	if isMissing(rerr) {
		return switchPlan{}, &refusal{sentinel: ErrSlotMissing, reason: "slot missing: " + slot}
	}
	var cred credential
	if rerr == nil {
		cred = m.cfg.format.parse(data)
	}
	if leases {
		if where := m.leasedLogin(cred.login, sub); where != "" {
			// Even forced, as for sub's own lease: the slot is a copy of
			// a login live in a seat.
			return switchPlan{}, &refusal{sentinel: ErrLeased,
				reason: fmt.Sprintf("refusing to switch to %s: its login is %s", sub, where)}
		}
	}
	var side sidecarRead
	if fresh, why := freshnessOf(m.cfg.format, slot, cred, rerr, m.cfg.grace, m.cfg.now()); !fresh {
		return switchPlan{}, &refusal{sentinel: ErrNotFresh, reason: fmt.Sprintf("refusing to switch to %s: %s", sub, why)}
	}
	if sc.next {
		// The ranking read the state file without the lock: a rest written
		// since is seen here, before the change.
		state, err := m.readState()
		if err != nil {
			return switchPlan{}, &refusal{err: err}
		}
		if st := state[sub]; st.resting(m.cfg.now()) {
			return switchPlan{}, &refusal{sentinel: errResting,
				reason: fmt.Sprintf("resting until %s: %s", formatTime(*st.RestUntil), st.RestReason)}
		}
	}
	if !sc.force {
		why, err := m.invalidation(sub, cred.fingerprint)
		if err != nil {
			return switchPlan{}, &refusal{err: err}
		}
		if why != "" {
			return switchPlan{}, &refusal{sentinel: ErrInvalidated,
				reason: fmt.Sprintf("refusing to switch to %s: the server rejected its login (%s); log in again, then capture (credslots capture %s), or force", sub, why, sub)}
		}
		side = m.readSidecar(sub)
		id, err := m.verdictFrom(sub, cred.fingerprint, side.fp, side.err)
		if err != nil {
			return switchPlan{}, &refusal{err: err}
		}
		if id.Drift {
			return switchPlan{}, &refusal{sentinel: ErrIdentityDrift,
				reason: fmt.Sprintf("refusing to switch to %s: %s; verify the login, then CaptureSlotFingerprint (or Force)", sub, id.Reason)}
		}
	}
	live, err := inspect(m.cfg.fs, m.live)
	if err != nil {
		return switchPlan{}, &refusal{err: fmt.Errorf("credslots: read live path %s: %w", m.live, err)}
	}
	plan := switchPlan{slot: data, fingerprint: cred.fingerprint, live: live, side: side}
	switch live.Kind {
	case kindSymlink:
		// A symlink holds no data: no slot but the target needs reading.
		plan.from, _ = m.slotNamed(live.Target)
	case kindFile:
		// Only a regular file can hold a token that exists nowhere else.
		if _, found := m.slotWithHash(live.Hash); !found {
			plan.keepLive = true
		}
	}
	if plan.keepLive && sc.force {
		plan.liveOwner = m.liveLoginOf(live)
	}
	if plan.keepLive && !sc.force {
		if shown := m.newLoginShown(); shown != "" {
			return switchPlan{}, &refusal{sentinel: ErrLiveDrifted,
				reason: fmt.Sprintf("refusing to switch to %s: %s; or Force to keep it as %s",
					sub, newLoginAdvice(shown), filepath.Base(m.live+prevSuffix))}
		}
		if m.newIdentityLogin(live.Data) {
			return switchPlan{}, &refusal{sentinel: ErrLiveDrifted,
				reason: fmt.Sprintf("refusing to switch to %s: %s; or Force to keep it as %s",
					sub, m.newIdentityAdvice(), filepath.Base(m.live+prevSuffix))}
		}
		return switchPlan{}, &refusal{sentinel: ErrLiveDrifted,
			reason: fmt.Sprintf("refusing to switch to %s: live file %s matches no slot and would be lost; heal it into its slot first (HealDriftTo) or Force to keep it as %s",
				sub, filepath.Base(m.live), filepath.Base(m.live+prevSuffix))}
	}
	return plan, nil
}

// carryState rewrites the target slot so that it holds the live file's
// account-independent state (see carriedSlot), keeping its old content as
// its backup. A live file that is not a readable JSON object leaves the
// slot as it is, logged.
func (m *Manager) carryState(sub string, plan switchPlan) error {
	if plan.live.Data == nil {
		return nil // no live content: nothing to carry
	}
	next, ok := carriedSlot(plan.slot, plan.live.Data)
	if !ok {
		if doc, problem := jsonscan.Document(plan.live.Data); problem != "" || doc[0] != '{' {
			m.cfg.logger.Warn("live file is not a readable JSON object; state not carried", "sub", sub, "path", m.live)
		}
		return nil
	}
	slot := m.slots[sub]
	if err := m.keepBackup(slot, plan.slot); err != nil {
		return err
	}
	if err := m.writeFile(slot, next); err != nil {
		return err
	}
	m.cfg.logger.Info("carried state into slot", "sub", sub, "path", slot)
	return nil
}

// switchLocked makes the change of a switch whose checks passed: keep a
// drifted live file as its backup when forced, then swap the link in.
func (m *Manager) switchLocked(mu *mutation, c *change, sub string, plan switchPlan) error {
	if err := mu.verify(); err != nil {
		return err
	}
	if m.cfg.carryState && m.cfg.format.carriesState() {
		if err := m.carryState(sub, plan); err != nil {
			return err
		}
	}
	spliced := false
	if plan.keepLive {
		if err := m.keepBackup(m.live, plan.live.Data); err != nil {
			return err
		}
		m.cfg.logger.Warn("kept drifted live file before forced switch",
			"sub", sub, "path", m.live+prevSuffix)
		m.recordKept(c, plan)
	}
	if err := swapInSymlink(m.cfg.fs, m.live, m.symlinkTarget(sub), plan.live, m.rescue); err != nil {
		return err
	}
	// The live path's directory is the creds dir, whose owner the change
	// read when it took the locks.
	if mu.owners != nil {
		mu.owners.own(m.live)
	} else {
		m.own(m.live)
	}
	if m.cfg.carryState && m.cfg.format.carriesState() {
		// The account Claude Code shows follows the switch; a failure
		// leaves .claude.json as it was until Claude Code fetches the
		// profile itself.
		shown, err := m.spliceAccount(mu, sub, plan.side)
		if err != nil {
			m.cfg.logger.Warn("could not splice the account", "sub", sub, "path", claudeJSONName, "reason", err.Error())
		}
		c.account = shown
		spliced = err == nil // shown is what .claude.json shows now
	}
	if c.account == nil && !spliced && m.cfg.format.carriesState() {
		// Not spliced: .claude.json still shows what it showed before,
		// which is no news of a login either.
		c.account = m.shownAccountAt(mu.claudeJSONPath(m))
	}
	return nil
}

// recordKept journals whose login the drifted live file just kept as the
// live backup holds: the sub, when the journal can tell (the sub live when
// it was written), so that [Manager.Backups] names it; and the account
// .claude.json shows, before the switch splices another in, so that a
// restore of a new login is not filed under a sub of another account. A
// failure is logged.
func (m *Manager) recordKept(c *change, plan switchPlan) {
	owner, fp := plan.liveOwner, m.cfg.format.parse(plan.live.Data).fingerprint
	account := ""
	if shown := m.shownAccount(); shown != nil {
		account = accountID(shown)
	}
	if fp == "" || owner == "" && account == "" {
		return
	}
	whose := owner + "'s login"
	if owner == "" {
		whose = "a login no slot holds"
	}
	e := JournalEntry{Time: m.cfg.now(), Op: opKeep, Phase: phaseDone, Sub: owner, Fingerprint: fp, Account: account,
		Kept: m.rel(m.live + prevSuffix), Reason: "the drifted live file, " + whose + ", kept before a forced switch"}
	if err := c.record(e); err != nil {
		m.cfg.logger.Warn("journal record failed", "sub", owner, "op", opKeep, "reason", err.Error())
	}
}

// busy asks the lock guard for busy-signals unless the call is forced.
func (m *Manager) busy(sc switchConfig) []string {
	if sc.force || m.cfg.lockGuard == nil {
		return nil
	}
	return append([]string(nil), m.cfg.lockGuard()...)
}

// refuse builds a refusal: logged at Warn, OK false, an error that carries the
// reason and wraps sentinel.
func (m *Manager) refuse(sentinel error, sub, reason string, locks []string) (SwitchResult, error) {
	attrs := []any{"sub", sub, "reason", reason}
	if len(locks) > 0 {
		attrs = append(attrs, "locks", locks)
	}
	m.cfg.logger.Warn("refused", attrs...)
	return SwitchResult{Reason: reason, Sub: sub, DeferredLocks: locks},
		fmt.Errorf("credslots: %s: %w", reason, sentinel)
}

// fail reports an error met while changing files (or waiting for the lock).
func (m *Manager) fail(sub string, err error) (SwitchResult, error) {
	m.cfg.logger.Warn("change failed", "sub", sub, "reason", err.Error())
	return SwitchResult{Reason: err.Error(), Sub: sub}, err
}

// changed finishes a successful switch or heal: capture the fingerprint fp
// of what the slot now holds (a failure is journaled, reported by Status
// and added to the reason), run the on-switch hook, log at Info.
func (m *Manager) changed(sub, hookReason, reason, fp string, healed bool, side sidecarRead) (SwitchResult, error) {
	if _, err := m.captureWith(sub, fp, side, false, false); err != nil {
		reason = m.captureFailed(sub, reason, err)
	}
	if m.cfg.onSwitch != nil {
		m.cfg.onSwitch(sub, hookReason)
	}
	msg := "switched"
	if healed {
		msg = "healed"
	}
	m.cfg.logger.Info(msg, "sub", sub, "reason", hookReason, "result", reason, "path", m.slots[sub])
	return SwitchResult{OK: true, Reason: reason, Sub: sub}, nil
}
