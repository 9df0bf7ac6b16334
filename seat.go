package credslots

// This file holds a lease's seat: which directories may be one, the seat's
// CLI locks, and how a login moves into and out of a seat's credential
// file for each CLI.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/gptme/credslots/internal/atomicfile"
	"github.com/gptme/credslots/internal/jsonscan"
)

// seatsDir is where the command's private seats live.
func (m *Manager) seatsDir() string { return filepath.Join(m.private, SeatsDirName) }

// checkSeat returns seat absolute and cleaned, or why it is refused.
func (m *Manager) checkSeat(seat string) (string, error) {
	if seat == "" {
		return "", errors.New("credslots: lease: no seat directory given")
	}
	abs, err := filepath.Abs(seat)
	if err != nil {
		return "", fmt.Errorf("credslots: lease: seat %s: %w", seat, err)
	}
	seat = filepath.Clean(abs)
	dirs := []string{m.dir}
	if real, err := m.cfg.fs.EvalSymlinks(m.dir); err == nil && filepath.Clean(real) != m.dir {
		dirs = append(dirs, filepath.Clean(real))
	}
	for _, d := range dirs {
		if seat == d {
			return "", fmt.Errorf("credslots: refusing seat %s: it is the creds dir, whose live path is the seat home, served by switch", seat)
		}
		if isBelow(seat, d) {
			seats := filepath.Join(d, privateDirName, SeatsDirName)
			if !isBelow(seat, seats) {
				return "", fmt.Errorf("credslots: refusing seat %s: it is inside the creds dir %s (only private seats under %s are)", seat, m.dir, seats)
			}
		}
	}
	// Walk down from the root: every existing component must be a
	// directory, never a symlink, so that the login lands where it was sent.
	for p := seat; ; p = filepath.Dir(p) {
		fi, err := m.cfg.fs.Lstat(p)
		switch {
		case err == nil && fi.Mode()&fs.ModeSymlink != 0:
			return "", fmt.Errorf("credslots: refusing seat %s: %s is a symlink", seat, p)
		case err == nil && !fi.IsDir():
			return "", fmt.Errorf("credslots: refusing seat %s: %s is not a directory", seat, p)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("credslots: seat %s: %w", seat, err)
		}
		if filepath.Dir(p) == p {
			break
		}
	}
	return seat, nil
}

// isBelow reports whether path is strictly below dir.
func isBelow(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// makeSeat creates the missing directories of seat, each 0700 whatever the
// umask.
func (m *Manager) makeSeat(seat string) error {
	var missing []string
	for p := seat; ; p = filepath.Dir(p) {
		if _, err := m.cfg.fs.Lstat(p); err == nil {
			break
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := m.ensurePrivateDir(missing[i]); err != nil {
			return err
		}
	}
	return nil
}

// seatFile is the credential file a seat's CLI reads.
func (m *Manager) seatFile(seat string) string { return filepath.Join(seat, m.cfg.liveName) }

// holdsLogin reports whether a seat's file holds a login: for Claude Code
// the account's member, for the other CLIs any content.
func (m *Manager) holdsLogin(data []byte) bool {
	if !m.cfg.format.carriesState() {
		return len(data) > 0
	}
	_, ok := accountMemberOf(data)
	return ok
}

// removePrivateSeat removes the command's private seat that seat is (or is
// inside: Gemini CLI's seat is the .gemini directory of one) under
// "<creds dir>/.credslots/seats/", with the legacy lock directory Claude
// Code makes beside it. Any other seat is left alone, and so is a private
// seat's directory that holds keep (the seat about to be handed out) or
// another lease's seat, unless that lease vacated it: records are the
// lease records, sub the ended lease's.
func (m *Manager) removePrivateSeat(seat, sub, keep string, records []leaseRecord) {
	dirs := []string{m.seatsDir()}
	if real, err := m.cfg.fs.EvalSymlinks(m.dir); err == nil {
		dirs = append(dirs, filepath.Join(filepath.Clean(real), privateDirName, SeatsDirName))
	}
	for _, d := range dirs {
		if !isBelow(seat, d) {
			continue
		}
		rel, _ := filepath.Rel(d, seat)
		top := filepath.Join(d, strings.Split(rel, string(filepath.Separator))[0])
		within := func(p string) bool { return p == top || isBelow(p, top) }
		if keep != "" && within(keep) {
			return
		}
		for _, o := range records {
			if o.Sub != sub && !o.Vacated && within(o.Seat) {
				return // another lease's seat is in it: its login may be there
			}
		}
		_ = m.cfg.fs.RemoveAll(top)
		if fi, err := m.cfg.fs.Lstat(top + lockSuffix); err == nil && fi.IsDir() {
			_ = m.cfg.fs.Remove(top + lockSuffix)
		}
		return
	}
}

// withSeatLocks runs fn holding the locks the format's CLI takes in seat
// around a refresh and a credential write (unless CLI locks are off).
func (m *Manager) withSeatLocks(seat string, fn func() error) error {
	return m.withSeatLocksContext(context.Background(), seat, fn)
}

// withSeatLocksContext is withSeatLocks whose wait for the locks ends with
// ctx.
func (m *Manager) withSeatLocksContext(ctx context.Context, seat string, fn func() error) error {
	mu := &mutation{}
	defer mu.end()
	if m.cfg.cliLocks {
		var real string
		if m.cfg.format.needsRealDir() {
			r, err := m.cfg.fs.EvalSymlinks(seat)
			if err != nil {
				return fmt.Errorf("credslots: resolve seat %s: %w", seat, err)
			}
			real = filepath.Clean(r)
		}
		start := time.Now()
		deadline := start.Add(m.cfg.lockTimeout)
		for _, cl := range m.cfg.format.cliLocks(seat, real) {
			if _, _, err := mu.take(ctx, m.cfg.fs, cl, m.cfg.staleScale, start, deadline, nil); err != nil {
				return err
			}
		}
	}
	if err := mu.verify(); err != nil {
		return err
	}
	return fn()
}

// writeSeat writes a seat's credential file atomically, 0600, never
// following a symlink there; nil data removes it.
func (m *Manager) writeSeat(seat string, data []byte) error {
	path := m.seatFile(seat)
	if data == nil {
		if err := m.cfg.fs.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("credslots: clear seat %s: %w", path, err)
		}
		return syncDirOf(m.cfg.fs, path)
	}
	// The seat is outside the creds dir: the one atomic writer, without
	// the creds dir's containment check (checkSeat refused symlinks).
	return atomicfile.WriteFile(m.cfg.fs, path, data, m.ownerFor(path))
}

// handOut writes sub's slot login into the seat. A login already there
// that is not the slot's (a seat the caller logged in by hand) is kept as a
// backup generation first, never lost: kept is its name, as
// [Manager.Backups] lists it ("" when nothing was kept). The caller holds
// the package's lock and the seat's CLI locks.
func (m *Manager) handOut(sub, seat string, slot []byte) (kept string, err error) {
	path := m.seatFile(seat)
	cur, err := m.cfg.fs.ReadFile(path)
	switch {
	case isMissing(err):
		cur = nil
	case err != nil:
		return "", fmt.Errorf("credslots: read seat %s: %w", path, err)
	}
	if cur != nil {
		// Whatever a verdict would keep (see seatVerdict), or count newer,
		// goes into a backup before the hand-out overwrites it.
		if v := m.seatVerdict(sub, slot, cur, ""); v.differs && (v.newer || v.keep) {
			if kept, err = m.keepGeneration(m.slots[sub]+".seat", cur); err != nil {
				return "", err
			}
			m.cfg.logger.Warn("kept the login a seat held before the lease as a backup", "sub", sub, "path", seat, "backup", kept)
		}
	}
	if !m.cfg.format.carriesState() {
		return kept, m.writeSeat(seat, slot)
	}
	login, ok := accountMemberOf(slot)
	if !ok {
		return kept, fmt.Errorf("credslots: slot has no %s object to hand out: %w", accountKey, ErrUnhealable)
	}
	if cur == nil {
		return kept, m.writeSeat(seat, concat([]byte(`{"`+accountKey+`":`), login, []byte("}")))
	}
	doc, problem := jsonscan.Document(cur)
	if problem != "" {
		return kept, fmt.Errorf("credslots: seat file %s is not JSON (%s); not overwritten", path, problem)
	}
	next, ok := spliceMember(cur, doc, accountKey, login)
	if !ok {
		return kept, fmt.Errorf("credslots: seat file %s is not a JSON object; not overwritten", path)
	}
	return kept, m.writeSeat(seat, next)
}

// clearSeat removes the login from the seat: for Claude Code only the
// account's member (the file goes when nothing else is left in it), for
// the other CLIs the whole file. The caller holds the seat's CLI locks.
func (m *Manager) clearSeat(seat string) error {
	path := m.seatFile(seat)
	cur, err := m.cfg.fs.ReadFile(path)
	switch {
	case isMissing(err):
		return nil
	case err != nil:
		return fmt.Errorf("credslots: read seat %s: %w", path, err)
	}
	if !m.cfg.format.carriesState() {
		return m.writeSeat(seat, nil)
	}
	doc, problem := jsonscan.Document(cur)
	members, ok := jsonscan.Members(doc)
	if problem != "" || !ok {
		return m.writeSeat(seat, nil) // no other state to keep in it
	}
	var rest []jsonscan.Member
	for _, mb := range members {
		if mb.Name != accountKey {
			rest = append(rest, mb)
		}
	}
	if len(rest) == len(members) {
		return nil
	}
	if len(rest) == 0 {
		return m.writeSeat(seat, nil)
	}
	return m.writeSeat(seat, jsonscan.WriteObject(rest))
}

// accountMemberOf returns the raw claudeAiOauth object of a Claude Code
// credential document.
func accountMemberOf(data []byte) ([]byte, bool) {
	doc, problem := jsonscan.Document(data)
	if problem != "" {
		return nil, false
	}
	v := jsonscan.Fields(doc, accountKey)[0]
	if len(v) == 0 || v[0] != '{' {
		return nil, false
	}
	return v, true
}

// seatReading is what a seat's login is compared with its slot.
type seatReading struct {
	differs bool // the seat's login is not the slot's
	newer   bool // ... and may replace it: non-blank, same identity where it is stable, later expiry
	blank   bool
	foreign bool // another identity, for a format whose identity is stable
	// contested: the seat's login, which no record names, is live in
	// another held lease's seat too (see opContested).
	contested bool
	// keep: not written back, the seat's login is kept as a backup before
	// the seat is cleared. So is every whole login but the slot's, and
	// any other file (an unreadable expiry, an emptied access token) that
	// holds a refresh token the slot does not: it may be the only copy of
	// the newest one.
	keep bool
	cred credential
	why  string // why it may not replace the slot
}

// keepSeatLogin keeps a seat's login that is not written back (older,
// another's, contested) as a backup generation of sub's slot, never lost;
// a contested one is journaled as such, once, so that no later write-back
// of the other seat's copy takes it for a refresh. It runs under the
// package's lock.
func (m *Manager) keepSeatLogin(sub, seat string, v seatReading, data []byte, what string) error {
	if _, err := m.keepGeneration(m.slots[sub]+".seat", data); err != nil {
		return err
	}
	if v.contested && !m.contested(v.cred.login) {
		m.journalLease(opContested, sub, seat, "found in another seat too; written back into neither slot", v.cred.login)
	}
	m.cfg.logger.Warn(what, "sub", sub, "path", seat, "reason", v.why)
	return nil
}

// seatVerdict compares the login in a seat's file with sub's slot. handed
// is the fingerprint of the login the lease handed to the seat ("" when
// unknown): for a format whose refresh token rotates, a seat login with a
// refresh token never seen before (none the journal records), while the
// slot still holds the handed login, is the seat's CLI's refresh of it,
// newer whatever its expiry (a token endpoint may grant a shorter life than
// the handed token had left), since the slot's refresh token is then used
// up; another slot holding that token took a copy of it from the seat. Any
// other login that another slot holds, and any login another held lease's
// seat holds (the same refresh token: a file copied into the seat), is
// that one's, never sub's newer one.
func (m *Manager) seatVerdict(sub string, slot, seatData []byte, handed string) seatReading {
	f := m.cfg.format
	var v seatReading
	if f.carriesState() {
		a, _ := accountMemberOf(seatData)
		b, _ := accountMemberOf(slot)
		if a == nil {
			v.why = "no " + accountKey + " in the seat"
			return v
		}
		v.differs = string(compactJSON(a)) != string(compactJSON(b))
	} else {
		v.differs = string(seatData) != string(slot)
	}
	if !v.differs {
		v.why = "the same login"
		return v
	}
	v.cred = f.parse(seatData)
	slotCred := f.parse(slot)
	switch {
	case v.cred.problem != "":
		v.why = "the seat's login: " + v.cred.problem
		v.keep = v.cred.login != "" && v.cred.login != slotCred.login
		return v
	case v.cred.blank != "":
		v.blank = true
		v.why = "the seat's login is blank: " + v.cred.blank + " is empty"
		v.keep = v.cred.login != "" && v.cred.login != slotCred.login
		return v
	}
	// No journal record names the seat's login: a token never seen.
	unnamed := m.loginOwners()[v.cred.fingerprint] == ""
	rotated := !f.stableIdentity() && handed != "" && slotCred.fingerprint == handed &&
		v.cred.fingerprint != "" && v.cred.fingerprint != handed && unnamed
	// Where the identity survives a refresh (Codex: the account), a seat
	// login of the slot's own identity is sub's: a sub is one account.
	ownIdentity := f.stableIdentity() && v.cred.fingerprint != "" && v.cred.fingerprint == slotCred.fingerprint
	why := ""
	if v.cred.login != "" && v.cred.login != slotCred.login {
		switch where := m.leasedLogin(v.cred.login, sub); {
		case where != "" && unnamed:
			// This seat's may be the original as well as the copy.
			v.contested = true
			why = "the seat's login is also in another seat (" + where + ") and no record says whose: it is written back into neither slot"
		case where != "":
			why = "the seat's login is " + where + ", not a newer login of " + sub
		case m.contested(v.cred.login):
			why = "the seat's login was found in two seats at once, and no record says whose: it is written back into neither slot (each seat's copy is a backup; restore it into its own sub: credslots backups)"
		case !rotated && !ownIdentity:
			// A slot holding the seat's own refresh took a copy of it.
			if o := m.slotWithLogin(v.cred.login, sub); o != "" {
				why = "the seat's login is the one slot " + o + " holds (a copy of it), not a newer login of " + sub
			}
		}
	}
	switch {
	case why != "":
		// Written back, one refresh token would be in two slots: the
		// first refresh through either ends the other.
		v.foreign, v.why, v.keep = true, why, true
		return v
	case f.stableIdentity() && slotCred.fingerprint != "" && v.cred.fingerprint != slotCred.fingerprint:
		v.foreign, v.keep = true, true
		v.why = "the seat's login has another " + f.identityName()
		return v
	case rotated:
		// Rotated by the seat's CLI from the handed login (a token never
		// seen before, not an older copy put back): newer.
	case slotCred.hasExpiry() && !v.cred.expiry.After(slotCred.expiry):
		v.why, v.keep = "the seat's login is not newer than the slot's", true
		return v
	}
	v.newer = true
	return v
}
