package credslots

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
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
//  6. unless [Force], the login is sub's, else [ErrIdentityDrift]: its identity
//     is not another configured slot's; .claude.json does not show an account
//     another sub remembers, nor (a new login, [ErrNewLogin]) another account
//     than sub remembers, where the shown account changed since the
//     journal's last change; and the journal does not say another sub was
//     live when the live file was written, unless .claude.json shows sub's
//     own account;
//  7. unless [Force], it does not step backwards: a login expiring before the
//     one sub's slot holds is refused with [ErrOlderLogin];
//  8. unless [Force], the lock guard reports no busy-signal, else [ErrDeferred].
//
// Then the slot's previous content is kept as "<slot path>.prev", the
// validated bytes are written to the slot exactly as read (never
// re-serialized), and the live file is replaced by the relative symlink, but
// only while it still holds those bytes: if the CLI refreshed again
// meanwhile, the newer live file stays and the error wraps [ErrLiveChanged].
// A server rejection recorded for sub's slot (see [Manager.MarkInvalid])
// stands on the healed login too. Finally the fingerprint is captured (the
// account sub remembers is kept; a failure is logged) and the on-switch hook
// runs with "auto-heal drift (live cred resynced to slot)". A heal of an
// earlier process that stopped between the slot write and the swap is
// completed first.
func (m *Manager) HealDriftTo(sub string, opts ...SwitchOption) (SwitchResult, error) {
	if !m.knows(sub) {
		return m.refuse(ErrUnknownSubscription, sub, m.unknownSub(sub), nil)
	}
	return m.heal(context.Background(), sub, applySwitchOptions(opts))
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
	return m.heal(context.Background(), "", applySwitchOptions(opts))
}

// heal is [Manager.HealDriftTo], or [Manager.HealDrift] when sub is "".
func (m *Manager) heal(ctx context.Context, sub string, sc switchConfig) (SwitchResult, error) {
	if err := ctx.Err(); err != nil {
		return m.fail(sub, fmt.Errorf("credslots: heal not started: %w", err))
	}
	// Before the first change, a first look without locks (see
	// [Manager.SwitchTo]). After it, one while a busy-signal stands: a
	// heal it defers changes nothing whatever the locks would show, so a
	// heal deferred, and retried, while the CLI works takes none of its
	// locks. Any other refusal is decided under the locks, where an
	// interrupted heal is finished first.
	if first := m.firstChange(); first || len(m.busy(sc)) > 0 {
		entries, err := m.readJournal()
		if err != nil {
			return m.fail(sub, err)
		}
		if plan, r := m.checkHeal(sub, sc, entries); r != nil && (first || r.sentinel == ErrDeferred) {
			return m.deny(plan.sub, r)
		}
	}
	mu, err := m.beginMutationContext(ctx)
	if err != nil {
		return m.fail(sub, err)
	}
	defer mu.end()
	entries, err := m.readJournal()
	if err != nil {
		return m.fail(sub, err)
	}
	if entries, _, err = m.finishInterrupted(entries); err != nil {
		return m.fail(sub, err)
	}
	plan, r := m.checkHeal(sub, sc, entries)
	if r != nil {
		return m.deny(plan.sub, r)
	}
	sub = plan.sub
	if !sc.adopt {
		// The server's rejection of this account's login stands on its
		// refreshed login too; recorded before the slot changes.
		if data, ok := plan.slots.data[sub]; ok {
			if err := m.keepMarkLocked(sub, m.cfg.format.parse(data).fingerprint, plan.cred.fingerprint); err != nil {
				return m.fail(sub, err)
			}
		}
	}
	op, hook, done := opHeal, healHookReason, "healed: synced live → %s, symlink restored"
	if sc.adopt {
		op, hook, done = opAdopt, adoptHookReason, "adopted: live login written to %s, symlink restored"
	}
	c, err := m.beginChange(mu, op, sub, "", hook, plan.cred.fingerprint)
	if err != nil {
		return m.fail(sub, err)
	}
	c.account = plan.shown
	if err := c.finish(m.healLocked(mu, plan)); err != nil {
		if cur, rerr := m.cfg.fs.ReadFile(m.slots[sub]); rerr == nil && bytes.Equal(cur, plan.live.Data) {
			// The slot holds the login all the same (a step after its
			// write failed): its identity is captured, so that the slot
			// reads as sub's login, not as drift, and an adopted sub's
			// account is remembered.
			if _, cerr := m.captureWith(sub, plan.cred.fingerprint, plan.side, sc.adopt, sc.adopt); cerr != nil {
				_ = m.captureFailed(sub, "", cerr)
			}
		}
		return m.fail(sub, err)
	}
	if sc.adopt {
		// A new login: its identity, and the account Claude Code shows, are
		// the baseline from now on.
		if _, err := m.captureWith(sub, plan.cred.fingerprint, plan.side, true, true); err != nil {
			_ = m.captureFailed(sub, "", err)
		}
		plan.side = sidecarRead{} // written: read it again
	}
	res, err := m.changed(sub, hook, fmt.Sprintf(done, filepath.Base(m.slots[sub])), plan.cred.fingerprint, true, plan.side)
	if !sc.adopt {
		res.From = sub
	}
	m.announce(mu, Change{Op: op, Sub: sub, From: res.From, Reason: hook})
	return res, err
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
// captured: adopting would replace another login; and a login the journal
// says another sub's refresh wrote while .claude.json still shows the
// account it showed after the journal's last change (no login happened).
func (m *Manager) Adopt(sub string, opts ...SwitchOption) (SwitchResult, error) {
	if !m.knows(sub) {
		return m.refuse(ErrUnknownSubscription, sub, m.unknownSub(sub), nil)
	}
	sc := applySwitchOptions(opts)
	sc.adopt = true
	return m.heal(context.Background(), sub, sc)
}

// healPlan is what the checks of a heal found: the sub, what the live path
// held and its reading, and the one read of every slot.
type healPlan struct {
	sub   string
	live  entry
	cred  credential
	slots slotReads
	side  sidecarRead // sub's sidecar, when the checks read it
	shown []byte      // the account .claude.json shows; nil when none
}

// checkHeal runs checks 2 to 6 of [Manager.HealDriftTo] (and, when sub is "", finds
// the sub in the journal); it only reads, each file once.
func (m *Manager) checkHeal(sub string, sc switchConfig, entries []JournalEntry) (healPlan, *refusal) {
	refuse := func(sentinel error, reason string) (healPlan, *refusal) {
		return healPlan{sub: sub}, &refusal{sentinel: sentinel, reason: reason}
	}
	named := sub != "" && !sc.adopt // a heal into a sub the caller named
	drift, live, slots, err := m.liveDrift()
	if err != nil {
		return healPlan{sub: sub}, &refusal{err: err}
	}
	switch {
	case drift == nil || !drift.Drift:
		return refuse(ErrNoDrift, "no drift")
	case live.Kind == kindSymlink || live.Kind == kindBrokenSymlink:
		return refuse(ErrUnhealable, "live is a symlink — drift implies slot rewrite, not OAuth refresh")
	case live.Kind != kindFile:
		return refuse(ErrUnhealable, "live file missing")
	}
	if sub == "" {
		var why string
		if sub, why = m.activeIn(live, entries); why != "" {
			return refuse(ErrAmbiguous, "cannot tell whose token the live file holds: "+why+"; name the sub it belongs to (credslots heal NAME)")
		}
	}
	if info, held := m.heldLease(sub); held {
		// Its login is live in a seat: home must not hold it too.
		return refuse(ErrLeased, fmt.Sprintf("refusing to heal into %s: its login is %s", sub, leaseNote(info)))
	}
	cred := m.cfg.format.parse(live.Data)
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
	if where := m.leasedLogin(cred.login, sub); where != "" {
		// Even forced, as for sub's own lease: the live file is a copy of
		// a login live in a seat, which sub's slot must not hold too.
		return refuse(ErrLeased, fmt.Sprintf("refusing to heal into %s: the live file holds %s", sub, where))
	}
	var side sidecarRead
	shown := m.shownAccount()
	if !sc.force {
		side = m.readSidecar(sub)
		f, err := m.foreignLogin(sub, live, cred, slots, side, shown, entries, sc.adopt, named)
		if err != nil {
			return healPlan{sub: sub}, &refusal{err: err}
		}
		if f.why != "" {
			verb := "heal into"
			if sc.adopt {
				verb = "adopt into"
			}
			sentinel := ErrIdentityDrift
			switch {
			case f.newLogin:
				sentinel = ErrNewLogin
			case f.settling:
				sentinel = errLoginSettling
			case f.ambiguous:
				sentinel = ErrAmbiguous
			}
			return refuse(sentinel, fmt.Sprintf("refusing to %s %s: %s", verb, sub, f.why))
		}
		if !sc.adopt {
			if why := m.backwards(sub, cred, slots); why != "" {
				return refuse(ErrOlderLogin, fmt.Sprintf("refusing to heal into %s: %s", sub, why))
			}
		}
	}
	if locks := m.busy(sc); len(locks) > 0 {
		why := fmt.Sprintf("deferred: active lock(s) %s; would heal to %s", strings.Join(locks, ", "), sub)
		return healPlan{sub: sub}, &refusal{sentinel: ErrDeferred, reason: why, locks: locks}
	}
	return healPlan{sub: sub, live: live, cred: cred, slots: slots, side: side, shown: shown}, nil
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
	case read && !bytes.Equal(prev, plan.live.Data):
		if err := m.keepBackup(slot, prev); err != nil {
			return err
		}
	case err != nil && !isMissing(err) && !(holdsNoFile(err) && isSymlink(m.cfg.fs, slot)):
		// A slot that is a symlink (to a directory, say) holds no data:
		// it is replaced like a missing one.
		return fmt.Errorf("credslots: read slot %s before backup: %w", slot, err)
	}
	if err := m.writeFile(slot, plan.live.Data); err != nil {
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
	return m.activeIn(live, entries)
}

// activeIn is activeFor with the journal's records as read.
func (m *Manager) activeIn(live entry, entries []JournalEntry) (string, string) {
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
	// A change made under the CLI's own locks cannot straddle a CLI write:
	// a live file with the placed symlink's very mtime (the same timestamp
	// tick) was still written after it.
	if !live.Mtime.After(ref) && !(done.CLILocks && done.LiveMtime != nil && live.Mtime.Equal(ref)) {
		previous := "the previous sub's"
		if done.From != "" && done.From != done.Sub && m.knows(done.From) {
			previous = "the previous sub's (" + done.From + "'s)"
		}
		return "", fmt.Sprintf("the live file was written at %s, not after the %s to %s completed at %s, so it may hold %s token",
			live.Mtime.UTC().Format(time.RFC3339Nano), done.Op, done.Sub, ref.UTC().Format(time.RFC3339Nano), previous)
	}
	return done.Sub, ""
}

// finishInterrupted completes a heal or adopt whose process stopped after
// it began (its intent is the journal's newest change, with no outcome):
// when the slot already holds the login it was writing, the symlink is put
// back if the live file still holds those bytes, the fingerprint is
// captured and the heal is recorded as done; when the slot does not, the
// heal changed nothing and is recorded as failed. Either way the journal
// again says whose login is live. It runs under the caller's locks.
//
// It returns the journal's records, read again when it added one, and the
// sub of the flip it recorded ("" for none).
func (m *Manager) finishInterrupted(entries []JournalEntry) ([]JournalEntry, string, error) {
	p, ok := m.finishable(entries)
	if !ok {
		return entries, "", nil
	}
	flipped, err := m.finishHeal(p)
	if err != nil {
		return nil, "", err
	}
	entries, err = m.readJournal()
	return entries, flipped, err
}

// finishable returns the intent of the interrupted heal or adopt that
// finishInterrupted completes: the journal's newest change, with no
// outcome, into a configured sub, with the fingerprint it was writing.
func (m *Manager) finishable(entries []JournalEntry) (JournalEntry, bool) {
	p, ok := pendingChange(entries)
	return p, ok && (p.Op == opHeal || p.Op == opAdopt) && p.Fingerprint != "" && m.knows(p.Sub)
}

// finishHeal completes the interrupted heal whose intent is p. When the
// live symlink was pointed at another sub's slot since (a flip by hand,
// which nothing could record while the heal had no outcome), it records
// that flip after the heal and returns that sub.
func (m *Manager) finishHeal(p JournalEntry) (string, error) {
	c := &change{m: m, entry: p}
	slot := m.slots[p.Sub]
	data, err := m.cfg.fs.ReadFile(slot)
	if err != nil || m.cfg.format.parse(data).fingerprint != p.Fingerprint {
		_ = c.finish(errInterruptedEarly)
		return "", nil
	}
	live, err := inspect(m.cfg.fs, m.live)
	if err != nil {
		return "", fmt.Errorf("credslots: read live path %s: %w", m.live, err)
	}
	if live.Kind == kindFile && bytes.Equal(live.Data, data) {
		if err := swapInSymlink(m.cfg.fs, m.live, m.symlinkTarget(p.Sub), live, m.rescue); err != nil {
			return "", err
		}
		m.own(m.live)
	}
	// What the heal placed is the live path only while the live symlink
	// points at the sub's slot. A live file written since (a newer
	// refresh) leaves the slot, written when the slot was; a symlink
	// pointed elsewhere since leaves it too, and the sub it points at is
	// live.
	placed, flipped := true, false
	if fi, err := m.cfg.fs.Lstat(m.live); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		placed = false
	} else if active, ok := m.ActiveSubscription(); !ok || active != p.Sub {
		placed, flipped = false, ok
	}
	if !placed {
		if sfi, serr := m.cfg.fs.Lstat(slot); serr == nil {
			mt := sfi.ModTime().UTC()
			c.entry.LiveMtime = &mt
		}
	}
	c.entry.Reason = "completed after an interruption: " + p.Reason
	if placed {
		// No newer login since: .claude.json shows this change's account.
		c.account = m.shownAccount()
	}
	if err := c.finish(nil); err != nil {
		return "", err
	}
	// An adopt captures the account .claude.json shows, as it would have,
	// unless a newer write moved the live path on.
	adopt := p.Op == opAdopt && placed
	if _, err := m.captureKnown(p.Sub, p.Fingerprint, adopt, adopt); err != nil {
		return "", err
	}
	m.cfg.logger.Info("completed an interrupted heal", "sub", p.Sub, "path", slot)
	if !flipped {
		return "", nil
	}
	sub, _, err := m.recordFlipLocked()
	return sub, err
}

// errLoginSettling is ErrDeferred for a heal that waits for a login's
// writes to settle: no lock is involved, and its message says so.
var errLoginSettling error = loginSettlingError{}

type loginSettlingError struct{}

func (loginSettlingError) Error() string        { return "deferred until the login settles" }
func (loginSettlingError) Is(target error) bool { return target == ErrDeferred }

// errInterruptedEarly is the outcome recorded for a heal that stopped
// before it wrote the slot.
var errInterruptedEarly = errors.New("credslots: interrupted before the slot was written; nothing changed")
