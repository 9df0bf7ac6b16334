package credslots

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// healHookReason is passed to the on-switch hook after a heal.
const healHookReason = "auto-heal drift (live cred resynced to slot)"

// HealDriftTo recovers from a CLI token refresh that replaced the live symlink
// with a regular file, stranding every slot at the old token: it copies the
// live bytes into sub's slot and puts the symlink back. The caller decides
// which sub was active before the refresh. Checks, in order:
//
//  1. sub is configured, else [ErrUnknownSubscription];
//  2. the live content matches no slot, else [ErrNoDrift] ("no drift");
//  3. the live path is not a symlink, else [ErrUnhealable];
//  4. the live path exists, else [ErrUnhealable] ("live file missing");
//  5. the live bytes, read once, are a credential of the Manager's format with
//     a readable expiry (else [ErrUnhealable]), fresh beyond the grace period
//     (else [ErrNotFresh]), and not blanked by a failed refresh or logout (else
//     [ErrUnhealable] naming the blank field);
//  6. unless [Force], the lock guard reports no busy-signal, else [ErrDeferred].
//
// Then the slot's previous content is kept as "<slot path>.prev", the
// validated bytes are written to the slot exactly as read (never
// re-serialized), and the live file is replaced by the relative symlink, but
// only while it still holds those bytes: if the CLI refreshed again
// meanwhile, the newer live file stays and the error wraps [ErrLiveChanged].
// Finally the fingerprint is captured (a failure is logged) and the
// on-switch hook runs with "auto-heal drift (live cred resynced to slot)".
func (m *Manager) HealDriftTo(sub string, opts ...SwitchOption) (SwitchResult, error) {
	if !m.knows(sub) {
		return m.refuse(ErrUnknownSubscription, sub, m.unknownSub(sub), nil)
	}
	return m.heal(sub, applySwitchOptions(opts))
}

// HealDrift is [Manager.HealDriftTo] into the sub the journal says was active: the
// one whose switch or heal completed last ([Manager.LastActive]). Beyond the
// checks of [Manager.HealDriftTo], it refuses with an error wrapping [ErrAmbiguous],
// changing nothing, when the journal cannot tell whose token the drifted live
// file holds: no completed switch or heal is recorded; the newest change has
// an intent but no done record (its process stopped in between, so the live
// path may hold either sub's token); or the live file is not newer than the
// symlink that change placed (it was written before that sub became active,
// so it may hold the previous sub's token). Name the sub with [Manager.HealDriftTo]
// once you know it.
func (m *Manager) HealDrift(opts ...SwitchOption) (SwitchResult, error) {
	return m.heal("", applySwitchOptions(opts))
}

// heal is [Manager.HealDriftTo], or [Manager.HealDrift] when sub is "".
func (m *Manager) heal(sub string, sc switchConfig) (SwitchResult, error) {
	// Before the first change, a first look without locks (see [Manager.SwitchTo]).
	if m.firstChange() {
		if plan, r := m.checkHeal(sub, sc); r != nil {
			return m.deny(plan.sub, r)
		}
	}
	mu, err := m.beginMutation()
	if err != nil {
		return m.fail(sub, err)
	}
	defer mu.end()
	plan, r := m.checkHeal(sub, sc)
	if r != nil {
		return m.deny(plan.sub, r)
	}
	sub = plan.sub
	op, hook, done := opHeal, healHookReason, "healed: synced live → %s, symlink restored"
	if sc.adopt {
		op, hook, done = opAdopt, adoptHookReason, "adopted: live login written to %s, symlink restored"
	}
	c, err := m.beginChange(op, sub, "", hook)
	if err != nil {
		return m.fail(sub, err)
	}
	if err := c.finish(m.healLocked(mu, plan)); err != nil {
		return m.fail(sub, err)
	}
	if sc.adopt {
		// A new login: its identity, and the account Claude Code shows, are
		// the baseline from now on.
		if _, err := m.captureKnown(sub, plan.cred.fingerprint, true, true); err != nil {
			m.cfg.logger.Warn("fingerprint capture failed after change", "sub", sub, "reason", err.Error())
		}
	}
	return m.changed(sub, hook, fmt.Sprintf(done, filepath.Base(m.slots[sub])), plan.cred.fingerprint, true)
}

// adoptHookReason is passed to the on-switch hook after Adopt.
const adoptHookReason = "adopt a new login from the live file"

// Adopt takes a fresh login that the CLI wrote to the live path and that is
// in no slot yet: it writes the live bytes to sub's slot (keeping the slot's
// old content as its backup), captures the new identity (and, for Claude
// Code, the account .claude.json shows), and puts the symlink back. It runs
// the checks of [Manager.HealDriftTo], and unless [Force] it refuses with
// [ErrIdentityDrift] a login whose identity is another configured slot's,
// or that differs from the identity sub's slot already holds or had
// captured: adopting would replace another login.
func (m *Manager) Adopt(sub string, opts ...SwitchOption) (SwitchResult, error) {
	if !m.knows(sub) {
		return m.refuse(ErrUnknownSubscription, sub, m.unknownSub(sub), nil)
	}
	sc := applySwitchOptions(opts)
	sc.adopt = true
	return m.heal(sub, sc)
}

// healPlan is what the checks of a heal found: the sub, what the live path
// held and its reading, and the one read of every slot.
type healPlan struct {
	sub   string
	live  entry
	cred  credential
	slots slotReads
}

// checkHeal runs checks 2 to 6 of [Manager.HealDriftTo] (and, when sub is "", finds
// the sub in the journal); it only reads, each file once.
func (m *Manager) checkHeal(sub string, sc switchConfig) (healPlan, *refusal) {
	refuse := func(sentinel error, reason string) (healPlan, *refusal) {
		return healPlan{sub: sub}, &refusal{sentinel: sentinel, reason: reason}
	}
	drift, live, slots, err := m.liveDrift()
	if err != nil {
		return healPlan{sub: sub}, &refusal{err: err}
	}
	switch {
	case drift == nil || !drift.Drift:
		return refuse(ErrNoDrift, "no drift")
	case live.kind == kindSymlink || live.kind == kindBrokenSymlink:
		return refuse(ErrUnhealable, "live is a symlink — drift implies slot rewrite, not OAuth refresh")
	case live.kind != kindFile:
		return refuse(ErrUnhealable, "live file missing")
	}
	if sub == "" {
		var why string
		if sub, why = m.activeFor(live); why != "" {
			return refuse(ErrAmbiguous, "cannot tell whose token the live file holds: "+why+"; name the sub (HealDriftTo)")
		}
	}
	if info, held := m.heldLease(sub); held {
		// Its login is live in a seat: home must not hold it too.
		return refuse(ErrLeased, fmt.Sprintf("refusing to heal into %s: its login is %s", sub, leaseNote(info)))
	}
	cred := m.cfg.format.parse(live.data)
	fresh := false
	if cred.hasExpiry() {
		fresh, _ = expiryVerdict(cred.expiry, m.cfg.grace, m.cfg.now())
	}
	switch {
	case cred.problem != "":
		return refuse(ErrUnhealable, "live file "+cred.problem)
	case !fresh:
		return refuse(ErrNotFresh, fmt.Sprintf("live token expired or in grace (%s)", formatTime(cred.expiry)))
	case cred.blank != "":
		return refuse(ErrUnhealable, fmt.Sprintf("live credential is blank: %s is empty (written after a failed refresh or a logout)", cred.blank))
	}
	if (m.cfg.format.stableIdentity() || sc.adopt) && !sc.force {
		why := m.foreignIdentity(sub, cred.fingerprint, slots)
		if why == "" && sc.adopt {
			if data, ok := slots.data[sub]; ok && m.cfg.format.parse(data).fingerprint != cred.fingerprint {
				why = fmt.Sprintf("slot %s already holds a login with another %s", sub, m.cfg.format.identityName())
			}
		}
		if why != "" {
			verb := "heal into"
			if sc.adopt {
				verb = "adopt into"
			}
			return refuse(ErrIdentityDrift, fmt.Sprintf("refusing to %s %s: %s (or Force)", verb, sub, why))
		}
	}
	if locks := m.busy(sc); len(locks) > 0 {
		why := fmt.Sprintf("deferred: active lock(s) %s; would heal to %s", strings.Join(locks, ", "), sub)
		return healPlan{sub: sub}, &refusal{sentinel: ErrDeferred, reason: why, locks: locks}
	}
	return healPlan{sub: sub, live: live, cred: cred, slots: slots}, nil
}

// healLocked makes the change of a heal whose checks passed: keep the slot's
// previous content, write the live bytes into the slot, and swap the link in
// while the live file still holds those bytes.
func (m *Manager) healLocked(mu *mutation, plan healPlan) error {
	if err := mu.verify(); err != nil {
		return err
	}
	slot := m.slots[plan.sub]
	prev, read := plan.slots.data[plan.sub]
	switch err := plan.slots.errs[plan.sub]; {
	case read && !bytes.Equal(prev, plan.live.data):
		if err := m.keepBackup(slot, prev); err != nil {
			return err
		}
	case err != nil && !isMissing(err):
		return fmt.Errorf("credslots: read slot %s before backup: %w", slot, err)
	}
	if err := m.writeFile(slot, plan.live.data); err != nil {
		return err
	}
	if err := mu.verify(); err != nil {
		return err
	}
	if err := swapInSymlink(m.cfg.fs, m.live, m.symlinkTarget(plan.sub), plan.live, m.rescue); err != nil {
		return err
	}
	m.own(m.live)
	return nil
}

// activeFor returns the sub the journal says the drifted live file belongs
// to, or why it cannot tell.
func (m *Manager) activeFor(live entry) (string, string) {
	entries, err := m.readJournal()
	if err != nil {
		return "", err.Error()
	}
	done, why := lastLiveChange(entries)
	if why != "" {
		return "", why
	}
	if !m.knows(done.Sub) {
		return "", fmt.Sprintf("the journal's last active sub %q is not configured", done.Sub)
	}
	// The old switch log kept whole seconds: its change may have happened
	// up to a second after the time it says.
	ref := done.Time.Add(time.Second)
	if done.LiveMtime != nil {
		ref = *done.LiveMtime
	}
	if !live.mtime.After(ref) {
		return "", fmt.Sprintf("the live file was written at %s, not after the %s to %s completed at %s, so it may hold the previous sub's token",
			live.mtime.UTC().Format(time.RFC3339Nano), done.Op, done.Sub, ref.UTC().Format(time.RFC3339Nano))
	}
	return done.Sub, ""
}

// foreignIdentity checks, for a format whose identity survives a refresh,
// that the live file's identity (fp) is sub's: it must not be another
// configured slot's, current or captured, and must equal sub's captured
// fingerprint when there is one. It returns why not, naming the format's
// identity field; "" when it is sub's.
func (m *Manager) foreignIdentity(sub, fp string, slots slotReads) string {
	field := m.cfg.format.identityName()
	if fp != "" {
		for _, other := range m.subs {
			if other == sub {
				continue
			}
			stored, _ := m.storedFingerprint(other)
			current := ""
			if data, ok := slots.data[other]; ok {
				current = m.cfg.format.parse(data).fingerprint
			}
			if fp == stored || fp == current {
				return fmt.Sprintf("the live file's %s is that of slot %s", field, other)
			}
		}
	}
	stored, err := m.storedFingerprint(sub)
	if err != nil {
		return err.Error()
	}
	if stored != "" && fp != stored {
		return fmt.Sprintf("the live file's %s differs from the one captured for %s", field, sub)
	}
	return ""
}
