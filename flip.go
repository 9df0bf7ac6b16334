package credslots

// This file records what a Manager saw but did not do: a flip of the live
// symlink by hand.

import (
	"context"
	"fmt"
	"io/fs"
)

// RecordFlip journals a flip of the live symlink that no Manager made, such
// as an operator's `ln -sfn .credentials.json.alice .credentials.json` (or
// a copy of a slot put at the live path with cp): when the live path is a
// symlink to a configured sub's slot (or holds its very bytes) and the journal
// says another sub is live, it records that sub as live from the symlink's
// modification time on, so that [Manager.HealDrift] heals a later refresh
// into the sub the link pointed at, not into the one switched to last. It
// returns the sub it recorded and true, or "" and false when there was
// nothing to record. It takes the package's locks only when it records,
// and the CLI's locks too when it first finishes a heal that stopped half
// way (as the next heal would), since that heal's missing outcome hides any
// flip; the credslots command's watch calls it on every change it sees. Without a
// watcher a flip made by hand is not seen; a heal then goes by the journal
// and by the account .claude.json shows.
func (m *Manager) RecordFlip() (string, bool, error) { return m.recordFlip(context.Background()) }

// RecordFlipContext is [Manager.RecordFlip] whose wait for the package's
// lock ends with ctx: a done ctx records nothing and returns an error
// wrapping ctx.Err().
func (m *Manager) RecordFlipContext(ctx context.Context) (string, bool, error) {
	if err := notStarted(ctx); err != nil {
		return "", false, err
	}
	return m.recordFlip(ctx)
}

func (m *Manager) recordFlip(ctx context.Context) (string, bool, error) {
	// A first look without locks; the answer that counts is the one under them.
	_, ok, err := m.unrecordedFlip()
	if err != nil {
		return "", false, err
	}
	// A heal or adopt that stopped half way leaves the journal unable to
	// say whose login is live, so no flip shows against it; it is finished
	// first (under the CLI's locks, as it may put the symlink back), and
	// finishing it records a flip made since.
	interrupted := !ok && m.interruptedChange()
	if !ok && !interrupted {
		return "", false, nil
	}
	begin := m.beginOwnMutation // only the journal changes
	if interrupted {
		begin = m.beginMutationContext
	}
	mu, err := begin(ctx)
	if err != nil {
		return "", false, err
	}
	defer mu.end()
	if interrupted {
		entries, err := m.readJournal()
		if err != nil {
			return "", false, err
		}
		_, flipped, err := m.finishInterrupted(entries)
		if err != nil || flipped != "" {
			return flipped, flipped != "", err
		}
	}
	return m.recordFlipLocked()
}

// interruptedChange reports whether the journal's newest change is a heal
// or adopt with no outcome that finishInterrupted completes: one it cannot
// complete takes no lock here.
func (m *Manager) interruptedChange() bool {
	entries, err := m.readJournal()
	if err != nil {
		return false
	}
	_, ok := m.finishable(entries)
	return ok
}

// recordFlipLocked records an unrecorded flip (see unrecordedFlip) under
// the caller's locks: the sub the live path shows as live from the live
// path's modification time on.
func (m *Manager) recordFlipLocked() (string, bool, error) {
	sub, ok, err := m.unrecordedFlip()
	if err != nil || !ok {
		return "", false, err
	}
	fi, err := m.cfg.fs.Lstat(m.live)
	if err != nil {
		return "", false, fmt.Errorf("credslots: live path %s: %w", m.live, err)
	}
	from, _ := m.LastActive()
	mt := fi.ModTime().UTC()
	e := JournalEntry{Time: m.cfg.now(), Op: opFlip, Phase: phaseDone, ID: newChangeID(), Sub: sub, From: from,
		Reason: "the live path was pointed at " + sub + " (or given a copy of its slot) outside credslots", LiveMtime: &mt}
	if shown := m.shownAccount(); shown != nil {
		e.Account = accountID(shown) // still the previous sub's, until Claude Code fetches the profile
	}
	if err := m.record(e); err != nil {
		return "", false, err
	}
	m.cfg.logger.Info("recorded a flip", "sub", sub, "from", from, "path", m.live)
	return sub, true, nil
}

// unrecordedFlip returns the sub whose slot the live symlink points at (or
// whose slot's very bytes a regular live file holds: a rotation by cp) when
// the journal does not say that sub is live.
func (m *Manager) unrecordedFlip() (string, bool, error) {
	fi, err := m.cfg.fs.Lstat(m.live)
	if err != nil {
		return "", false, nil
	}
	var sub string
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		active, ok := m.ActiveSubscription()
		if !ok {
			return "", false, nil
		}
		sub = active
	case fi.Mode().IsRegular():
		drift, err := m.DetectLiveSlotDrift()
		if err != nil || drift == nil || drift.MatchingSlot == "" {
			return "", false, nil
		}
		sub = drift.MatchingSlot
		// A slot written after the live file (cp .credentials.json
		// .credentials.json.alice) was given the live file's bytes: the
		// live path did not change, so that is no flip.
		if sfi, err := m.cfg.fs.Lstat(m.slots[sub]); err == nil && sfi.ModTime().After(fi.ModTime()) {
			return "", false, nil
		}
	default:
		return "", false, nil
	}
	entries, err := m.readJournal()
	if err != nil {
		return "", false, err
	}
	// Only a record to contradict makes a flip: with none (no change
	// recorded yet, or the newest one's outcome unknown) a heal refuses to
	// guess anyway.
	if done, why := lastLiveChange(entries); why != "" || done.Sub == sub {
		return "", false, nil
	}
	return sub, true, nil
}
