package credslots

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
)

// opRemove is the journal's name for [Manager.Remove].
const opRemove = "remove"

// ErrActiveSub indicates that a change would take away the slot the live
// symlink points at; switch to another sub first.
var ErrActiveSub = errors.New("subscription is active")

// Remove takes sub out of the rotation, deleting nothing for good: sub's
// slot becomes its newest backup ("<slot path>.prev", an older one moving
// to the backup generations), its identity sidecar is kept in the private
// dir (a restore of sub's own login remembers its account again), then the
// slot and its sidecar are removed, under the locks of every change, journaled. Discovery no longer
// finds sub; [Manager.Restore] brings its login back. It refuses, changing
// nothing, an unknown sub ([ErrUnknownSubscription]), a sub whose slot does
// not exist ([ErrSlotMissing]), the active sub ([ErrActiveSub]) and a sub
// leased to a seat ([ErrLeased]).
func (m *Manager) Remove(sub, reason string) error {
	return m.remove(context.Background(), sub, reason)
}

// RemoveContext is [Manager.Remove] whose waits for the locks end with ctx:
// a done ctx changes nothing and returns an error wrapping ctx.Err().
func (m *Manager) RemoveContext(ctx context.Context, sub, reason string) error {
	if err := notStarted(ctx); err != nil {
		return err
	}
	return m.remove(ctx, sub, reason)
}

func (m *Manager) remove(ctx context.Context, sub, reason string) error {
	if !m.knows(sub) {
		return fmt.Errorf("credslots: %s: %w", m.unknownSub(sub), ErrUnknownSubscription)
	}
	check := func() ([]byte, error) {
		if active, ok := m.ActiveSubscription(); ok && active == sub {
			return nil, fmt.Errorf("credslots: %s is the active sub; switch to another one first: %w", sub, ErrActiveSub)
		}
		if info, held := m.heldLease(sub); held {
			// Its login is live in the seat: the release writes it back.
			return nil, fmt.Errorf("credslots: refusing to remove %s: its login is %s; end that lease first (its credslots run, or Release): %w", sub, leaseNote(info), ErrLeased)
		}
		if why := m.liveCopyOf(sub); why != "" {
			// The live file is sub's login: removing the slot would leave
			// its newest login in a live file no slot owns.
			return nil, fmt.Errorf("credslots: %s is the active sub: %s: %w", sub, why, ErrActiveSub)
		}
		data, err := m.cfg.fs.ReadFile(m.slots[sub])
		switch {
		case isMissing(err):
			return nil, fmt.Errorf("credslots: slot missing: %s: %w", m.slots[sub], ErrSlotMissing)
		case err != nil:
			return nil, fmt.Errorf("credslots: read slot %s: %w", m.slots[sub], err)
		}
		return data, nil
	}
	// Before the first change, a first look without locks (see [Manager.SwitchTo]).
	if m.firstChange() {
		if _, err := check(); err != nil {
			return err
		}
	}
	if m.locks.leasesSeen.Load() {
		// A seat to recover first (see [Manager.SwitchTo]).
		if err := m.awaitLeftSeat(ctx, sub); err != nil {
			return err
		}
	}
	mu, err := m.beginMutationContext(ctx)
	if err != nil {
		return err
	}
	defer mu.end()
	// An ended lease's seat may hold sub's newest login (its CLI refreshed
	// there): it comes back into the slot before the slot becomes the
	// backup, or the backup would be the spent login and the newest one
	// stranded in a seat no configured sub leads to.
	if m.leasesMayExist() {
		if err := m.recoverSub(sub); err != nil {
			return err
		}
	}
	data, err := check()
	if err != nil {
		return err
	}
	c, err := m.beginChange(mu, opRemove, sub, "", reason, "")
	if err != nil {
		return err
	}
	if err := c.finish(m.removeLocked(mu, sub, data)); err != nil {
		return err
	}
	m.cfg.logger.Info("removed", "sub", sub, "path", m.slots[sub], "backup", m.slots[sub]+prevSuffix)
	m.announce(mu, Change{Op: opRemove, Sub: sub, Reason: reason})
	return nil
}

// removeLocked keeps the slot as its backup, then removes the slot and its
// sidecar.
func (m *Manager) removeLocked(mu *mutation, sub string, data []byte) error {
	if err := mu.verify(); err != nil {
		return err
	}
	slot := m.slots[sub]
	if err := m.keepBackup(slot, data); err != nil {
		return err
	}
	if err := m.keepRemovedSidecar(sub); err != nil {
		return err
	}
	fsys := m.cfg.fs
	for _, p := range []string{slot, m.prints[sub]} {
		if err := fsys.Remove(p); err != nil && !isMissing(err) {
			return fmt.Errorf("credslots: remove %s: %w", filepath.Base(p), err)
		}
		if err := syncDirOf(fsys, p); err != nil {
			return err
		}
	}
	return nil
}

// liveCopyOf tells, for a live regular file that is sub's login, what to
// do first: a copy of sub's slot (a rotation by cp), or a file matching no
// slot that the journal says is sub's (the CLI refreshed sub's login, or
// logged in to a new account: then it is filed under a sub of its own).
// It returns "" when the live file is not sub's regular file.
func (m *Manager) liveCopyOf(sub string) string {
	live, err := inspect(m.cfg.fs, m.live)
	if err != nil || live.Kind != kindFile {
		return ""
	}
	if owner, inSlot := m.slotWithHash(live.Hash); inSlot {
		if owner == sub {
			return "the live file is a copy of its slot; switch to another sub first (credslots switch --next)"
		}
		return ""
	}
	if owner, why := m.activeFor(live); why == "" && owner == sub {
		// A login to a new account is no refresh, and no heal takes it:
		// the same advice as status and a switch refusal give.
		if shown := m.newLoginShown(); shown != "" {
			return newLoginAdvice(shown)
		}
		if m.newIdentityLogin(live.Data) {
			return m.newIdentityAdvice()
		}
		return fmt.Sprintf("the live file holds its refreshed login; heal it into its slot (credslots heal %s), then switch to another sub first", sub)
	}
	return ""
}
