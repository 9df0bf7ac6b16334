package credslots

// This file brings a lease's logins back: a newer login written back from a
// seat into its slot, the seats that ended leases left behind, and
// write-backs a crash interrupted.

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/gptme/credslots/internal/jsonscan"
)

// strandedLogins says, for Status, which ended leases (their lock held by
// no process, never released) left a login in their seat: it waits there
// for the next lease, which writes it back.
func (m *Manager) strandedLogins() []string {
	var out []string
	for _, r := range m.leaseRecords() {
		if r.Released != nil || m.leaseHeld(r.Sub) {
			continue
		}
		data, err := m.cfg.fs.ReadFile(m.seatFile(r.Seat))
		if err != nil || !m.holdsLogin(data) || !m.seatHoldsLease(r, data) {
			continue
		}
		out = append(out, fmt.Sprintf("sub %s: the lease to %s ended without a release and left its login there; the next lease writes it back", r.Sub, r.Seat))
	}
	return out
}

// recoverEnded recovers the seat of every lease whose lock no process
// holds, each under its lease lock, taken for the time of the recovery.
// keep is a seat about to be handed out ("" for none): a private seat of
// that name is not removed. The caller holds the package's lock.
//
// A seat that could not be recovered (it cannot be read) stops no other
// sub's recovery: it is returned, by its lease's sub, with why, and that
// sub (whose login may be there) and that seat are not handed out.
func (m *Manager) recoverEnded(records []leaseRecord, keep string) map[string]unrecovered {
	var failed map[string]unrecovered
	for _, r := range records {
		f, ok, err := m.takeLeaseLock(r.Sub)
		if err != nil || !ok {
			continue // held: its seat is live
		}
		err = m.recoverSeat(r, records, keep)
		_ = f.Close()
		if err != nil {
			if failed == nil {
				failed = map[string]unrecovered{}
			}
			failed[r.Sub] = unrecovered{seat: r.Seat, err: err}
			m.cfg.logger.Warn("the seat of an ended lease could not be recovered", "sub", r.Sub, "seat", r.Seat, "reason", err.Error())
		}
	}
	return failed
}

// unrecovered is an ended lease's seat that recoverEnded could not recover.
type unrecovered struct {
	seat string
	err  error
}

// recoverSeat takes back what the ended lease r left in its seat, unless
// that seat has since been handed to another lease (a newer record names
// it): a newer, non-blank login is written into the slot (keeping
// the old slot as its backup); the login is then removed from the seat. A
// private seat of the command is removed with it, unless it holds keep,
// the seat about to be handed out, or another lease's seat.
func (m *Manager) recoverSeat(r leaseRecord, records []leaseRecord, keep string) error {
	for _, o := range records {
		if o.Sub != r.Sub && o.Seat == r.Seat && (o.Since.After(r.Since) || m.leaseHeld(o.Sub)) {
			return nil // the seat is another lease's now
		}
	}
	if r.Released == nil && r.Ended == nil {
		// Its lock is free (the caller holds it): the lease has ended by
		// now, which the record keeps (see shownBySeat).
		now := m.cfg.now().UTC()
		r.Ended = &now
		if err := m.writeLeaseRecord(r); err != nil {
			m.cfg.logger.Warn("lease record update failed", "sub", r.Sub, "reason", err.Error())
		}
	}
	// vacate records that the ended lease's seat holds nothing of it: its
	// lock is free, so no process of the lease is left to put its login
	// there, and whatever is put there later (the directory reused by
	// hand) is never taken for the lease's (see seatHoldsLease), as after
	// a release.
	vacate := func() {
		if r.Vacated {
			return
		}
		r.Vacated = true
		if err := m.writeLeaseRecord(r); err != nil {
			m.cfg.logger.Warn("lease record update failed", "sub", r.Sub, "reason", err.Error())
		}
	}
	// A first look without the seat's locks: most ended seats hold no
	// login any more (released, or recovered already).
	peek, err := m.cfg.fs.ReadFile(m.seatFile(r.Seat))
	if err != nil || !m.holdsLogin(peek) {
		if err == nil || isMissing(err) {
			vacate()
			m.removePrivateSeat(r.Seat, r.Sub, keep, records)
		}
		if err != nil && !isMissing(err) {
			return fmt.Errorf("credslots: read seat %s: %w", m.seatFile(r.Seat), err)
		}
		return nil
	}
	if !m.seatHoldsLease(r, peek) {
		// Put there after the release vacated it, or there before a
		// hand-out that never landed: not the lease's, and not touched.
		vacate()
		return nil
	}
	err = m.withSeatLocks(r.Seat, func() error {
		data, err := m.cfg.fs.ReadFile(m.seatFile(r.Seat))
		switch {
		case isMissing(err):
			vacate()
			return nil
		case err != nil:
			return fmt.Errorf("credslots: read seat %s: %w", m.seatFile(r.Seat), err)
		case !m.seatHoldsLease(r, data):
			vacate()
			return nil
		}
		slot, _ := m.cfg.fs.ReadFile(m.slots[r.Sub])
		v := m.seatVerdict(r.Sub, slot, data, m.handedTo(r, slot))
		switch {
		case v.newer:
			// Fresh or not, its refresh token is the live one: the slot's
			// was consumed when the seat's CLI refreshed.
			if err := m.takeBack(opRecover, r.Sub, r.Seat, slot, data, "recovered a newer login from the seat of an ended lease"); err != nil {
				return err
			}
		case v.keep:
			// Not written back (older, or another login): kept, never lost.
			if err := m.keepSeatLogin(r.Sub, r.Seat, v, data, "kept an ended lease's seat login as a backup"); err != nil {
				return err
			}
		}
		if err := m.clearSeat(r.Seat); err != nil {
			return err
		}
		vacate()
		return nil
	})
	if err != nil {
		return err
	}
	m.removePrivateSeat(r.Seat, r.Sub, keep, records)
	return nil
}

// handedTo is the login the ended lease r last handed to its seat: the one
// its record names or, when the slot holds a login written back from that
// seat during the lease (a write-back whose record update then failed),
// that one. The seat's CLI holds a rotation of it.
func (m *Manager) handedTo(r leaseRecord, slot []byte) string {
	fp := m.cfg.format.parse(slot).fingerprint
	if fp == "" || fp == r.Handed {
		return r.Handed
	}
	entries, err := m.readJournal()
	if err != nil {
		return r.Handed
	}
	for i := len(entries) - 1; i >= 0 && !entries[i].Time.Before(r.Since); i-- {
		e := entries[i]
		// An intent too: a write-back killed after its slot write left
		// no done record, and the slot holding its very login proves it
		// landed.
		if (e.Op == opSync || e.Op == opRecover) && (e.Phase == phaseDone || e.Phase == phaseIntent) && e.Sub == r.Sub && e.Seat == r.Seat && e.Fingerprint == fp {
			return fp
		}
	}
	return r.Handed
}

// landedError is a write-back's error after its slot write landed (the
// directory's sync failed, say): the slot holds the seat's login.
type landedError struct{ err error }

func (e *landedError) Error() string { return e.err.Error() }
func (e *landedError) Unwrap() error { return e.err }

// landed reports whether err is a write-back's whose slot write landed.
func landed(err error) bool {
	var l *landedError
	return errors.As(err, &l)
}

// takeBack writes the seat's newer login into sub's slot under the lock the
// caller holds, keeping the slot's old content as its backup, and captures
// the new fingerprint. It is journaled as a change (op is "sync" or
// "recover"): an intent carrying the new login's fingerprint, then a done
// record, so that a write-back a crash interrupted between the slot and
// its sidecar is completed later (see completeWriteBacks), never reported
// as identity drift.
func (m *Manager) takeBack(op, sub, seat string, slot, seatData []byte, reason string) error {
	next := seatData
	if m.cfg.format.carriesState() {
		login, _ := accountMemberOf(seatData)
		doc, problem := jsonscan.Document(slot)
		spliced, ok := []byte(nil), false
		if problem == "" {
			spliced, ok = spliceMember(slot, doc, accountKey, login)
		}
		if !ok {
			spliced = concat([]byte(`{"`+accountKey+`":`), login, []byte("}"))
		}
		next = spliced
	}
	fp := m.cfg.format.parse(next).fingerprint
	if slot != nil {
		// The seat's CLI's refresh of the slot's login, as a heal of a
		// refresh at home: a rejection of the server stands on it.
		if err := m.keepMarkLocked(sub, m.cfg.format.parse(slot).fingerprint, fp); err != nil {
			return err
		}
	}
	e := JournalEntry{Time: m.cfg.now(), Op: op, Phase: phaseIntent, ID: newChangeID(), Sub: sub, Seat: seat, Reason: reason, Fingerprint: fp}
	if err := m.record(e); err != nil {
		return err
	}
	path := m.slots[sub]
	err := func() error {
		if slot != nil {
			if err := m.keepBackup(path, slot); err != nil {
				return err
			}
		}
		return m.writeFile(path, next)
	}()
	e.Time, e.Phase = m.cfg.now(), phaseDone
	if err != nil {
		if cur, rerr := m.cfg.fs.ReadFile(path); rerr == nil && bytes.Equal(cur, next) {
			// The slot holds the seat's login all the same (its
			// directory's sync failed, say): the slot's old refresh
			// token is spent, and the seat's CLI rotates this one.
			e.Error = "written: " + err.Error()
			err = &landedError{err}
		} else {
			e.Phase, e.Error = phaseFailed, err.Error()
		}
	}
	if err == nil || landed(err) {
		if _, cerr := m.captureKnown(sub, fp, false, false); cerr != nil {
			m.cfg.logger.Warn("fingerprint capture failed after change", "sub", sub, "path", m.prints[sub], "reason", cerr.Error())
		}
	}
	if rerr := m.record(e); rerr != nil {
		m.cfg.logger.Warn("journal record failed", "sub", sub, "op", op, "reason", rerr.Error())
	}
	if err != nil {
		return err
	}
	m.cfg.logger.Info("wrote back a seat's login", "sub", sub, "path", path)
	return nil
}

// completeWriteBacks finishes write-backs that a crash interrupted after
// the slot was written but before its fingerprint was captured: for each
// sub in drifted whose slot holds the login the journal's newest write-back
// intent for it announced, the fingerprint is captured. It reports whether
// it captured any. The caller holds the package's lock.
func (m *Manager) completeWriteBacks(drifted map[string]string) bool {
	if len(drifted) == 0 {
		return false
	}
	entries, err := m.readJournal()
	if err != nil {
		return false
	}
	done := false
	for sub, current := range drifted {
		for i := len(entries) - 1; i >= 0; i-- {
			e := entries[i]
			if e.Sub != sub || (e.Op != opSync && e.Op != opRecover) || e.Phase != phaseIntent {
				continue
			}
			if e.Fingerprint != "" && e.Fingerprint == current {
				if _, err := m.captureKnown(sub, current, false, false); err == nil {
					m.cfg.logger.Info("completed an interrupted write-back", "sub", sub, "path", m.slots[sub])
					done = true
				}
			}
			break
		}
	}
	return done
}

// recoverSub recovers the seat sub's ended lease left behind, under its
// lease lock, before sub's login is handed out at home (SwitchTo): a newer
// login stranded there holds the live refresh token, the slot's was
// consumed. A held lease is left alone (SwitchTo refuses it). The caller
// holds the package's lock.
func (m *Manager) recoverSub(sub string) error {
	r, ok := m.leaseRecord(sub)
	if !ok {
		return nil
	}
	f, ok, err := m.takeLeaseLock(sub)
	if err != nil || !ok {
		return err
	}
	defer func() { _ = f.Close() }()
	return m.recoverSeat(r, m.leaseRecords(), "")
}
