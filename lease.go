package credslots

// This file holds leases: a sub's login handed to one seat (a directory a
// CLI reads its credential file from) at a time, so that many agents on one
// machine each run with a login of their own and no refresh token is ever
// live in two places.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gptme/credslots/internal/credfile"
)

const (
	// leasesDirName holds each sub's lease lock and record in the private
	// directory.
	leasesDirName = "leases"
	// SeatsDirName is the directory in "<creds dir>/.credslots/" where the
	// credslots command makes its private seats; the only seats inside the
	// creds dir that [Manager.Lease] accepts.
	SeatsDirName = "seats"
	// leasePoll is how often a waiting Lease looks for a free sub.
	leasePoll = 50 * time.Millisecond

	opLease   = "lease"
	opRelease = "release"
	opSync    = "sync"
	opRecover = "recover"
)

// LeaseOption modifies one [Manager.Lease] call.
type LeaseOption func(*leaseConfig)

type leaseConfig struct {
	sub  string
	wait bool
}

// LeaseSub asks for this sub only. Without it, Lease takes the best usable
// free sub, in the order of [Manager.Candidates].
func LeaseSub(sub string) LeaseOption {
	return func(c *leaseConfig) { c.sub = sub }
}

// LeaseWait makes Lease wait, until its context ends, for a sub to become
// free, instead of refusing at once with [ErrNoFreeSub] (or [ErrLeased]).
func LeaseWait() LeaseOption {
	return func(c *leaseConfig) { c.wait = true }
}

// LeaseInfo describes one sub's lease as recorded in
// "<creds dir>/.credslots/leases/<sub>.json".
type LeaseInfo struct {
	Sub string `json:"sub"`
	// Seat is the directory the login was handed to.
	Seat string `json:"seat"`
	// PID and Host name the lessee: the process that took the lease.
	PID   int       `json:"pid"`
	Host  string    `json:"host"`
	Since time.Time `json:"since"`
	// Released is when the lessee released the lease; nil when it did not
	// (it is still held, or its holders died).
	Released *time.Time `json:"released,omitempty"`
	// Held is true while the lease's lock is held, by the lessee or a
	// process that inherited it: the login is live in Seat.
	Held bool `json:"held"`

	// probe is why the lease lock could not be probed; a lock that cannot
	// be probed counts as held.
	probe error
}

// leaseRecord is the record file's content.
type leaseRecord struct {
	Sub      string     `json:"sub"`
	Seat     string     `json:"seat"`
	PID      int        `json:"pid"`
	Host     string     `json:"host"`
	Since    time.Time  `json:"since"`
	Released *time.Time `json:"released,omitempty"`
	// Handed is the identity fingerprint of the login handed to the seat:
	// a seat login with another one, while the slot still holds it, is the
	// seat's CLI's refresh of it (see seatVerdict).
	Handed string `json:"handed,omitempty"`
	// Prior is the login (see credential.login) the seat held before the
	// hand-out: found there still, the hand-out never landed, and it is
	// not the lease's (see seatHoldsLease).
	Prior string `json:"prior,omitempty"`
	// Vacated says that at release, the lease's lock closed, no process
	// held it any more (none had inherited it): the seat holds nothing of
	// the lease from then on.
	Vacated bool `json:"vacated,omitempty"`
	// Ended is, for a lease never released (its holders died), when a
	// recovery first found its lock free: it had ended by then.
	Ended *time.Time `json:"ended,omitempty"`
}

// seatHoldsLease reports whether data, the seat's file, may hold a login
// of the ended lease r: not when r vacated the seat at its release, nor
// when the seat still holds the login it held before the hand-out.
func (m *Manager) seatHoldsLease(r leaseRecord, data []byte) bool {
	if r.Vacated {
		return false
	}
	return r.Prior == "" || m.cfg.format.parseFor(data, credfile.Login).login != r.Prior
}

func (r leaseRecord) info(held bool) LeaseInfo {
	return LeaseInfo{Sub: r.Sub, Seat: r.Seat, PID: r.PID, Host: r.Host, Since: r.Since, Released: r.Released, Held: held}
}

// Lease is one sub's login handed to one seat. While it is held (by the
// lessee, or by any process that inherited [Lease.File]), no other lease,
// [Manager.SwitchTo] or [Manager.SwitchNext] hands that login out. Its
// methods are safe for concurrent use.
type Lease struct {
	m    *Manager
	sub  string
	seat string
	file *os.File
	// handed is the fingerprint of the login handed to the seat.
	handed string
	// kept is the backup the hand-out kept the seat's earlier login in.
	kept string

	mu       sync.Mutex
	released bool
	// looked is the hash of the seat's file as Sync last read it under
	// the seat's CLI locks (guarded by mu): the same bytes found again
	// without the locks are that settled file, not a refresh half done,
	// and are not read under the locks again.
	looked string
}

// Sub returns the leased sub.
func (l *Lease) Sub() string { return l.sub }

// Seat returns the seat directory, absolute and cleaned.
func (l *Lease) Seat() string { return l.seat }

// Kept names the backup (as [Manager.Backups] lists it) that holds the
// login the seat held before the hand-out, when it was not the login
// handed out and could not be dropped (a seat logged in by hand, another
// sub's copy, an older login of the sub's whose refresh token may still
// be good); "" when the seat held none, or nothing worth keeping. It may
// exist nowhere else: [Manager.Backups] says whose it is, and
// [Manager.Restore] brings it back.
func (l *Lease) Kept() string { return l.kept }

// File returns the lease's lock, an open file holding an exclusive flock on
// "<creds dir>/.credslots/leases/<sub>.lock". A child process that inherits
// it (exec.Cmd.ExtraFiles) holds the lease too: it ends only when the last
// holder closes it or exits, so a lessee that crashes while its CLI runs
// never lets the login out a second time. Do not close it; [Lease.Release]
// does.
func (l *Lease) File() *os.File { return l.file }

// Lease hands the login of a sub to seat, a directory a CLI reads its
// credential file from (an agent's CLAUDE_SECURESTORAGE_CONFIG_DIR,
// CLAUDE_CONFIG_DIR or CODEX_HOME; for Gemini CLI, GEMINI_CLI_HOME's .gemini).
//
// It picks like [Manager.SwitchNext] (usable: slot present, fresh, identity
// intact, not resting, not invalid; best first), skipping subs leased to
// another seat and the sub live at home (the creds dir's live path). With
// [LeaseSub] only that sub is considered. When none is free it returns an
// error wrapping [ErrNoFreeSub] saying why each sub was passed over (and
// [ErrLeased] too when the named sub is leased), or with [LeaseWait] it
// polls until ctx ends, and then returns the last such refusal, wrapping
// ctx.Err() too.
//
// The lease is an exclusive flock on "<creds dir>/.credslots/leases/<sub>.lock"
// (see [Lease.File]); a record beside it ("<sub>.json": seat, pid, host,
// since) says where the login went, and the journal records the lease.
// Before the login is handed out, a seat that an earlier, ended lease of
// the sub left behind is recovered: a newer (later expiry), non-blank login
// found there (for Codex CLI and Gemini CLI, of the slot's identity) is
// written back into the slot, the old slot kept as its backup; any other
// login there is kept as a backup generation; then the login is removed
// from that seat. This happens for every ended lease before the subs are
// judged, so a sub whose only live login was stranded in a dead seat is
// usable again. A login the seat held before the lease is kept as a backup
// generation too, never overwritten unseen.
//
// The login is written into "<seat>/<live name>" as a regular file, 0600,
// atomically, under the seat's CLI locks. With the [ClaudeCode] format only
// the account's member claudeAiOauth moves: every other key already in the
// seat's file stays. Codex CLI and Gemini CLI get the whole slot.
//
// Refused: a seat inside the creds dir (other than the command's private
// seats under "<creds dir>/.credslots/seats/"), including the creds dir
// itself, whose live path [Manager.SwitchTo] serves; a seat that is another
// held lease's (an error wrapping [ErrLeased]); a seat path through a
// symlink. A missing seat directory is created 0700.
func (m *Manager) Lease(ctx context.Context, seat string, opts ...LeaseOption) (*Lease, error) {
	var lc leaseConfig
	for _, opt := range opts {
		if opt != nil {
			opt(&lc)
		}
	}
	if lc.sub != "" && !m.knows(lc.sub) {
		return nil, fmt.Errorf("credslots: %s: %w", m.unknownSub(lc.sub), ErrUnknownSubscription)
	}
	seat, err := m.checkSeat(seat)
	if err != nil {
		return nil, err
	}
	if err := m.makeSeat(seat); err != nil {
		return nil, err
	}
	var refusal error
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			if first { // nothing tried: nothing to refuse
				return nil, err
			}
			return nil, waitEnded(refusal, err)
		}
		// A waiting Lease takes the locks only when a sub looks free:
		// polling them would hold up the CLI's own refresh at home.
		if first || m.leaseLooksPossible(lc) {
			err := m.awaitSeat(ctx, seat)
			var l *Lease
			var why error
			if err == nil {
				l, why, err = m.tryLease(ctx, seat, lc)
			}
			switch {
			case err != nil && lc.wait && (errors.Is(err, ErrLockTimeout) || endedBy(ctx, err)):
				// Other lessees hold the lock, or ctx ended the attempt:
				// keep waiting, until ctx ends. Any other error is the
				// attempt's answer, returned as it is.
			case err != nil || l != nil:
				return l, err
			default:
				refusal = why
			}
		}
		if !lc.wait {
			return nil, refusal
		}
		t := time.NewTimer(leasePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, waitEnded(refusal, ctx.Err())
		case <-t.C:
		}
	}
}

// endedBy reports whether err is ctx's own end (an error wrapping
// ctx.Err()), not an answer that ctx happened to end beside.
func endedBy(ctx context.Context, err error) bool {
	cerr := ctx.Err()
	return cerr != nil && errors.Is(err, cerr)
}

// waitEnded is what a waiting Lease returns when its context ends (with
// ctxErr): the last refusal it waited on, wrapping ctxErr too, however the
// end was seen (its Done, or its Err at the top of a round that the poll
// timer started as the deadline passed).
func waitEnded(refusal, ctxErr error) error {
	if refusal == nil { // every attempt found the lock busy
		refusal = noFreeSub(false, []string{"the lock stayed busy (" + ErrLockTimeout.Error() + ")"})
	}
	return fmt.Errorf("%w (%w)", refusal, ctxErr)
}

// awaitSeat waits, holding no lock at home, until the CLI locks of seat,
// and of every ended lease's seat with a login to recover, are free, or
// the lock timeout passes or ctx ends (see [Lease.Release]): an attempt takes them
// under home's locks, and must hold those no longer than handing the
// login out (or taking one back) needs. A seat another held lease has is
// left alone: the attempt refuses it.
func (m *Manager) awaitSeat(ctx context.Context, seat string) error {
	records := m.leaseRecords()
	var seats []string
	own := true
	for _, r := range records {
		held := m.leaseHeld(r.Sub)
		switch {
		case r.Seat == seat:
			own = own && !held
		case !held && m.seatToRecover(r, records):
			seats = append(seats, r.Seat)
		}
	}
	if own {
		seats = append(seats, seat)
	}
	for _, s := range seats {
		if err := m.withSeatLocksContext(ctx, s, func() error { return nil }); err != nil {
			return err
		}
	}
	return nil
}

// leaseLooksPossible reports, without taking a lock, whether a lease
// attempt may succeed: some sub (the one asked for) is not leased and not
// live at home, and is usable, its login live nowhere else, or an ended
// lease left a login in its seat.
func (m *Manager) leaseLooksPossible(lc leaseConfig) bool {
	home, unknown := m.homeSubs()
	if unknown != "" {
		return false
	}
	var records []leaseRecord
	for _, c := range m.Candidates() {
		if lc.sub != "" && c.Sub != lc.sub || c.Lease != nil || home[c.Sub] {
			continue
		}
		r, ended := m.leaseRecord(c.Sub)
		holds, err := false, error(nil)
		if ended {
			if records == nil {
				records = m.leaseRecords()
			}
			holds, err = m.seatLook(r, records)
		}
		switch {
		case err != nil:
			continue // a seat that cannot be read keeps its sub out (see recoverEnded)
		case c.Usable && m.liveLogin(m.currentLogin(c.Sub), c.Sub) == "":
			return true // not a copy of a login live at home or in a seat
		case holds:
			return true // an ended lease's seat holds a login to recover
		}
	}
	return false
}

// seatToRecover reports, without a lock, whether the ended lease r left a
// login in its seat that recovering it would take back: as recoverSeat
// looks, the seat's file holds a login (a file left with only the CLI's
// other state, as Claude Code keeps its MCP logins there, holds none), and
// the seat is not another lease's now. A waiting Lease that found any
// other seat worth an attempt would take the locks on every poll, and
// recover nothing.
func (m *Manager) seatToRecover(r leaseRecord, records []leaseRecord) bool {
	holds, _ := m.seatLook(r, records)
	return holds
}

// seatLook is seatToRecover with the error of a seat's file that cannot
// be read (a missing one is none), which recoverSeat fails on too.
func (m *Manager) seatLook(r leaseRecord, records []leaseRecord) (bool, error) {
	for _, o := range records {
		if o.Sub != r.Sub && o.Seat == r.Seat && (o.Since.After(r.Since) || m.leaseHeld(o.Sub)) {
			return false, nil
		}
	}
	data, err := m.cfg.fs.ReadFile(m.seatFile(r.Seat))
	if err != nil {
		if isMissing(err) {
			err = nil
		}
		return false, err
	}
	return m.holdsLogin(data), nil
}

// leasesDir, leaseLockPath and leaseRecordPath name a sub's lease files.
func (m *Manager) leasesDir() string { return m.leasesPath }

func (m *Manager) leaseLockPath(sub string) string {
	return filepath.Join(m.leasesDir(), sub+lockSuffix)
}

func (m *Manager) leaseRecordPath(sub string) string {
	return filepath.Join(m.leasesDir(), sub+".json")
}

// noFreeSub builds Lease's refusal.
func noFreeSub(leased bool, why []string) error {
	reason := "no free subscription to lease: " + strings.Join(why, "; ")
	if leased {
		return fmt.Errorf("credslots: %s: %w: %w", reason, ErrNoFreeSub, ErrLeased)
	}
	return fmt.Errorf("credslots: %s: %w", reason, ErrNoFreeSub)
}

// tryLease makes one attempt, under the package's lock: it returns the
// lease, or the refusal to return or wait on, or an error that ends Lease.
func (m *Manager) tryLease(ctx context.Context, seat string, lc leaseConfig) (*Lease, error, error) {
	mu, err := m.beginMutationContext(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer mu.end()
	records := m.leaseRecords()
	for _, r := range records {
		var what string
		switch {
		case r.Seat == seat:
			what = "it is"
		case isBelow(seat, r.Seat):
			what = "it is inside"
		case isBelow(r.Seat, seat):
			what = "it holds"
		default:
			continue
		}
		if m.leaseHeld(r.Sub) {
			// A seat inside another would be removed with it (a private
			// seat's directory), or hold its CLI's files.
			return nil, nil, fmt.Errorf("credslots: refusing seat %s: %s the seat of %s's lease (pid %d, since %s): %w",
				seat, what, r.Sub, r.PID, formatTime(r.Since), ErrLeased)
		}
	}
	// Recover every ended lease's seat first: a newer login there may be
	// what makes its sub usable again.
	failed := m.recoverEnded(records, seat)
	for sub, u := range failed {
		if u.seat == seat || sub == lc.sub {
			return nil, nil, u.err // the seat asked for, or the sub: its login may be there
		}
	}
	home, unknown := m.homeSubs()
	if unknown != "" {
		return nil, noFreeSub(false, []string{unknown}), nil
	}
	cands := m.Candidates()
	drifted := map[string]string{}
	for _, c := range cands {
		if c.Identity.Drift && c.Identity.CurrentFingerprint != "" {
			drifted[c.Sub] = c.Identity.CurrentFingerprint
		}
	}
	if m.completeWriteBacks(drifted) {
		cands = m.Candidates()
	}
	var why []string
	leased := false
	for _, c := range cands {
		if lc.sub != "" && c.Sub != lc.sub {
			continue
		}
		switch {
		case c.Lease != nil:
			why = append(why, fmt.Sprintf("%s: leased to %s (pid %d)", c.Sub, c.Lease.Seat, c.Lease.PID))
			leased = true
			continue
		case failed[c.Sub].err != nil:
			why = append(why, fmt.Sprintf("%s: its ended lease's seat %s could not be recovered (%v)", c.Sub, failed[c.Sub].seat, failed[c.Sub].err))
			continue
		case home[c.Sub]:
			why = append(why, c.Sub+": live at home")
			continue
		case !c.Usable:
			why = append(why, c.Sub+": "+c.PassedOver)
			continue
		}
		// Home's login, and every held lease's, by refresh token: a copy
		// of one (a slot copied by hand, a live file copied from a slot)
		// is not handed out a second time.
		if where := m.liveLogin(m.currentLogin(c.Sub), c.Sub); where != "" {
			why = append(why, c.Sub+": its login is "+where)
			continue
		}
		f, ok, err := m.takeLeaseLock(c.Sub)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			why = append(why, c.Sub+": leased")
			leased = true
			continue
		}
		l, err := m.grant(mu, f, c.Sub, seat, records)
		if err != nil {
			_ = f.Close()
			return nil, nil, err
		}
		return l, nil, nil
	}
	if len(why) == 0 {
		why = append(why, "none configured")
	}
	return nil, noFreeSub(leased && lc.sub != "", why), nil
}

// takeLeaseLock takes sub's lease lock, creating it. A probe by a reader
// ([Manager.Status], [Manager.Leases]) holds it for an instant, so a busy
// lock is tried a few times before it counts as held.
func (m *Manager) takeLeaseLock(sub string) (*os.File, bool, error) {
	m.locks.leasesSeen.Store(true)
	if err := m.ensurePrivateDir(m.leasesDir()); err != nil {
		return nil, false, err
	}
	path := m.leaseLockPath(sub)
	for i := 0; ; i++ {
		f, ok, err := m.cfg.fs.LockOpen(path, true)
		if err != nil {
			return nil, false, fmt.Errorf("credslots: take lease lock %s: %w", path, err)
		}
		if ok || i >= 3 {
			if ok {
				m.own(path)
			}
			return f, ok, nil
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// leaseProbe reports whether sub's lease lock is held by any process. It
// never creates the lock file. Another reader's probe holds the lock for an
// instant, so a busy lock is tried once more before it counts as held. err
// is why the lock could not be probed: any error but a missing lock file
// (no descriptor left, a permission, an I/O error).
func (m *Manager) leaseProbe(sub string) (held bool, err error) {
	for i := 0; ; i++ {
		f, ok, err := m.cfg.fs.LockOpen(m.leaseLockPath(sub), false)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil // no lock file: never leased
		}
		if err != nil {
			m.cfg.logger.Warn("lease lock cannot be probed; it counts as held", "sub", sub, "reason", err.Error())
			return false, err
		}
		if ok {
			_ = f.Close()
			return false, nil
		}
		if i >= 1 {
			return true, nil
		}
		time.Sleep(time.Millisecond)
	}
}

// leaseHeld is leaseProbe where a lock that cannot be probed counts as
// held: what asks then refuses, or leaves the lease alone, rather than put
// its login live a second time.
func (m *Manager) leaseHeld(sub string) bool {
	held, err := m.leaseProbe(sub)
	return held || err != nil
}

// leasesMayExist reports whether the leases directory may exist: false
// only when an lstat says it does not.
func (m *Manager) leasesMayExist() bool {
	_, err := m.cfg.fs.Lstat(m.leasesDir())
	may := !errors.Is(err, fs.ErrNotExist)
	m.locks.leasesSeen.Store(may)
	return may
}

// awaitLeftSeat waits, holding no lock, until the CLI's locks of the seat
// an ended lease of sub left a login in are free, so that the recovery
// that follows under the Manager's locks (see recoverSub) does not wait
// for them while holding the CLI's locks at home, where a refresh would
// find them held. A seat whose lease is held, or that holds no login to
// recover, is not waited for.
func (m *Manager) awaitLeftSeat(ctx context.Context, sub string) error {
	r, ok := m.leaseRecord(sub)
	if !ok || m.leaseHeld(sub) || !m.seatToRecover(r, m.leaseRecords()) {
		return nil
	}
	return m.withSeatLocksContext(ctx, r.Seat, func() error { return nil })
}

// leaseRecords reads every lease record, in configured order. Records that
// cannot be read are left out (and logged).
func (m *Manager) leaseRecords() []leaseRecord {
	var out []leaseRecord
	if _, err := m.cfg.fs.Lstat(m.leasesDir()); err != nil {
		return nil
	}
	for _, sub := range m.subs {
		r, ok := m.leaseRecord(sub)
		if ok {
			out = append(out, r)
		}
	}
	return out
}

// leaseRecord reads sub's lease record.
func (m *Manager) leaseRecord(sub string) (leaseRecord, bool) {
	data, err := m.cfg.fs.ReadFile(m.leaseRecordPath(sub))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			m.cfg.logger.Warn("lease record unreadable", "sub", sub, "path", m.leaseRecordPath(sub), "reason", err.Error())
		}
		return leaseRecord{}, false
	}
	var r leaseRecord
	if err := json.Unmarshal(data, &r); err != nil || r.Seat == "" {
		m.cfg.logger.Warn("lease record malformed", "sub", sub, "path", m.leaseRecordPath(sub))
		return leaseRecord{}, false
	}
	r.Sub = sub
	return r, true
}

// heldLease returns sub's lease when its lock is held. The record may be
// missing (a holder that inherited the lock outlived a released record's
// removal); the seat is then "".
func (m *Manager) heldLease(sub string) (LeaseInfo, bool) {
	held, err := m.leaseProbe(sub)
	if !held && err == nil {
		return LeaseInfo{}, false
	}
	r, _ := m.leaseRecord(sub)
	r.Sub = sub
	info := r.info(true)
	info.probe = err
	return info, true
}

// Leases lists every sub's lease record in configured order, held or not:
// a record that is not held is an ended lease (Released set when its
// lessee released it; nil when its holders died, and its seat is then
// recovered by the sub's next lease).
func (m *Manager) Leases() ([]LeaseInfo, error) {
	out := []LeaseInfo{}
	if _, err := m.cfg.fs.Lstat(m.leasesDir()); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return out, nil
		}
		return nil, fmt.Errorf("credslots: leases: %w", err)
	}
	for _, sub := range m.subs {
		held := m.leaseHeld(sub)
		r, ok := m.leaseRecord(sub)
		switch {
		case ok:
			out = append(out, r.info(held))
		case held:
			out = append(out, LeaseInfo{Sub: sub, Held: true})
		}
	}
	return out, nil
}

// homeSubs returns the subs whose login may be live at home, which no seat
// may be handed: the one the live symlink names; for a regular live file,
// the one the journal's last change made live (the CLI may still hold its
// login), and the one whose slot the file copies or the journal says it
// belongs to, else every one that may hold it: the one whose identity it
// holds (a format whose identity survives a refresh), the one whose
// remembered account .claude.json shows, and the one the last change
// replaced. unknown says why no sub may be leased: the live file holds a
// login no record names, which may be any sub's refresh, its slot's
// refresh token spent. A login the live file shows to be a new one (an
// identity, or an account, no slot has) is no sub's.
func (m *Manager) homeSubs() (home map[string]bool, unknown string) {
	if sub, ok := m.ActiveSubscription(); ok {
		return map[string]bool{sub: true}, ""
	}
	live, err := inspect(m.cfg.fs, m.live)
	if err != nil || live.Kind != kindFile {
		return nil, ""
	}
	home = map[string]bool{}
	entries, _ := m.readJournal()
	done, why := lastLiveChange(entries)
	if why == "" {
		home[done.Sub] = true
	}
	if sub, ok := m.slotWithHash(live.Hash); ok {
		home[sub] = true
		return home, ""
	}
	if sub, why := m.activeIn(live, entries); why == "" {
		home[sub] = true
		return home, ""
	}
	if why == "" && done.From != "" {
		home[done.From] = true // the live file may be older than the last change
	}
	cred := m.cfg.format.parse(live.Data)
	if cred.login == "" {
		return home, "" // no login at home
	}
	if m.cfg.format.stableIdentity() {
		// The identity names the login's sub; none names a new login.
		for _, sub := range m.subs {
			if cred.fingerprint != "" && m.currentFingerprint(sub) == cred.fingerprint {
				home[sub] = true
			}
		}
		return home, ""
	}
	shown := m.shownAccount()
	if sub := m.accountOwner(shown, ""); sub != "" {
		home[sub] = true
	} else if shown != nil && m.everyAccountRemembered() {
		return home, "" // an account no slot has: a new login
	}
	if len(home) == 0 {
		return nil, "the live file at home holds a login no record names (a refresh after a change credslots did not make), which may be any sub's: its slot's refresh token would be spent; heal it into its sub first (credslots heal NAME)"
	}
	return home, ""
}

// everyAccountRemembered reports whether the sidecar of every sub with a
// slot remembers its account, so that an account none of them has is none
// of theirs (a sub with no slot has no refresh token to spend).
func (m *Manager) everyAccountRemembered() bool {
	for _, sub := range m.subs {
		if _, err := m.cfg.fs.Lstat(m.slots[sub]); isMissing(err) {
			continue
		}
		if _, acct, err := m.storedSidecar(sub); err != nil || acct == nil {
			return false
		}
	}
	return true
}

// liveLogin says where login (see currentLogin) is live other than in
// sub's own slot: "live at home" when the live path (through its symlink)
// holds it, else as leasedLogin says; "" when nowhere.
func (m *Manager) liveLogin(login, sub string) string {
	if login == "" {
		return ""
	}
	if m.readAt(m.live, credfile.Login).login == login {
		return "live at home"
	}
	return m.leasedLogin(login, sub)
}

// leasedLogin says which held lease of a sub other than sub has login
// live: "bob's, leased to SEAT (...)" when bob's slot or its seat holds it
// (the seat's CLI may have refreshed it); "" when none.
func (m *Manager) leasedLogin(login, sub string) string {
	if login == "" {
		return ""
	}
	if _, err := m.cfg.fs.Lstat(m.leasesDir()); errors.Is(err, fs.ErrNotExist) {
		return "" // never leased
	}
	for _, other := range m.subs {
		if other == sub || !m.leaseHeld(other) {
			continue
		}
		r, _ := m.leaseRecord(other)
		if m.currentLogin(other) == login || (r.Seat != "" && m.readAt(m.seatFile(r.Seat), credfile.Login).login == login) {
			return other + "'s login, " + leaseNote(r.info(true))
		}
	}
	return ""
}

// leasedCopies lists, as problems, a held lease's login that is live in
// a second place too: at home (a seat's file copied to the live path), or
// in another held lease's seat, or that another slot holds (a seat's
// refresh copied into it). slots are Status's, each with its lease, and
// logins each configured sub's login, in order; home is the login of a
// regular live file ("" for none: a symlink's slot is among the slots).
func (m *Manager) leasedCopies(slots []SlotStatus, logins []string, home string) []string {
	var problems []string
	seen := map[string]string{} // seat login -> the lease holding it
	for i, ss := range slots {
		if ss.Lease == nil || ss.Lease.Seat == "" {
			continue
		}
		where := ss.Sub + "'s login, " + leaseNote(*ss.Lease)
		held := []string{logins[i]}
		if seat := m.readAt(m.seatFile(ss.Lease.Seat), credfile.Login).login; seat != "" && seat != held[0] {
			held = append(held, seat)
		}
		for _, login := range held {
			if login == "" {
				continue
			}
			if home != "" && login == home {
				problems = append(problems, fmt.Sprintf("the live file holds %s: a refresh through either ends the other; switch home to another sub (credslots switch NAME --force keeps the copy as a backup)", where))
			}
			if other, ok := seen[login]; ok && other != where {
				problems = append(problems, fmt.Sprintf("%s and %s hold one login: a refresh through either ends the other; end one of the two (its credslots run, or Release)", other, where))
			}
			seen[login] = where
			for i, l := range logins {
				if l == login && m.subs[i] != ss.Sub {
					problems = append(problems, fmt.Sprintf("slot %s holds %s (a copy of it): a refresh through one would end the other; log in to %s's account again and capture it", m.subs[i], where, m.subs[i]))
				}
			}
		}
	}
	return problems
}

// grant hands sub's login to seat under the locks mu holds and the lease
// lock f: recover what an earlier lease left, write the login into the
// seat, write the record, journal it.
func (m *Manager) grant(mu *mutation, f *os.File, sub, seat string, records []leaseRecord) (*Lease, error) {
	// Whoever takes the lease lock recovers the sub's last seat first, so
	// that no login is handed out while a newer one sits in a dead seat
	// (recoverEnded may have found the lock busy for a reader's instant);
	// and so the seat it hands out to, when another sub's ended lease left
	// its login there, under that sub's lease lock: the login about to
	// land in the seat must not push that one out of it.
	for _, r := range records {
		switch {
		case r.Sub == sub:
			if err := m.recoverSeat(r, records, seat); err != nil {
				return nil, err
			}
		case r.Seat == seat:
			// Released too: a process that inherited the lease's lock may
			// have refreshed there after the release cleared the seat.
			lf, ok, err := m.takeLeaseLock(r.Sub)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("credslots: refusing seat %s: it is the seat of %s's lease (pid %d, since %s): %w",
					seat, r.Sub, r.PID, formatTime(r.Since), ErrLeased)
			}
			err = m.recoverSeat(r, records, seat)
			_ = lf.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	if err := mu.verify(); err != nil {
		return nil, err
	}
	slot, err := m.cfg.fs.ReadFile(m.slots[sub])
	if err != nil {
		return nil, fmt.Errorf("credslots: read slot %s: %w", m.slots[sub], err)
	}
	// The record first: a lessee that dies before its login reaches the
	// seat leaves a record naming that seat, never a login no record names.
	host, _ := os.Hostname()
	handed := m.cfg.format.parse(slot).fingerprint
	rec := leaseRecord{Sub: sub, Seat: seat, PID: os.Getpid(), Host: host, Since: m.cfg.now().UTC(), Handed: handed}
	if cur, err := m.cfg.fs.ReadFile(m.seatFile(seat)); err == nil && m.holdsLogin(cur) {
		// A seat holding the slot's own login already is told from its
		// hand-out by nothing: it is the lease's, recovered as such.
		if prior := m.cfg.format.parseFor(cur, credfile.Login).login; prior != m.cfg.format.parseFor(slot, credfile.Login).login {
			rec.Prior = prior
		}
	}
	if err := m.writeLeaseRecord(rec); err != nil {
		return nil, err
	}
	var kept string
	if err := m.withSeatLocks(seat, func() (err error) { kept, err = m.handOut(sub, seat, slot); return err }); err != nil {
		return nil, err
	}
	m.journalLease(opLease, sub, seat, "leased to "+seat, handed)
	m.cfg.logger.Info("leased", "sub", sub, "path", seat)
	return &Lease{m: m, sub: sub, seat: seat, file: f, handed: handed, kept: kept}, nil
}

// writeLeaseRecord writes a lease record atomically.
func (m *Manager) writeLeaseRecord(r leaseRecord) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("credslots: encode lease record: %w", err)
	}
	return m.writeFile(m.leaseRecordPath(r.Sub), append(data, '\n'))
}

// journalLease records a lease event as one done record; a failure is
// logged.
func (m *Manager) journalLease(op, sub, seat, reason, fp string) {
	if err := m.record(JournalEntry{Time: m.cfg.now(), Op: op, Phase: phaseDone, Sub: sub, Seat: seat, Reason: reason, Fingerprint: fp}); err != nil {
		m.cfg.logger.Warn("journal record failed", "sub", sub, "op", op, "reason", err.Error())
	}
}

// Sync copies a newer login from the seat into the slot: the seat is read
// under the seat's CLI locks (so a refresh in flight is never copied half
// done; a file already read so, found again unchanged, is not read under
// them again, and a seat with no file is not looked at under them), and a
// login that is not blank, keeps the identity where the
// format's identity is stable, and expires later than the slot's is
// written into the slot under the Manager's locks, the old slot kept as
// its backup, and journaled. It does nothing when the seat holds the
// slot's login. A seat login of another identity returns an error wrapping
// [ErrIdentityDrift] and changes nothing.
func (l *Lease) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("credslots: lease of %s already released", l.sub)
	}
	_, err := l.sync()
	return err
}

// sync is Sync for a caller holding l.mu; it reports what the seat held.
func (l *Lease) sync() (seatReading, error) {
	m := l.m
	// A first look without the seat's locks: Claude Code and Codex CLI
	// replace their file by a rename (Gemini CLI, which writes in place,
	// takes no lock), so it reads a whole file, the old or the new. A seat
	// that holds the slot's own login asks for nothing, and following it
	// takes none of the locks its CLI refreshes under; anything else is
	// read again under them, unless it is the file last read so, found as
	// it was. A seat with no file holds nothing to write back (the file a
	// refresh renames there is one event later). Otherwise a seat left
	// blank, or holding an older copy, would be looked at under the CLI's
	// locks on every look for as long as the lease lasts.
	pre, err := m.cfg.fs.ReadFile(m.seatFile(l.seat))
	var first seatReading // the verdict on pre and slot0, when made
	var slot0 []byte
	switch {
	case isMissing(err):
		return seatReading{}, nil
	case err == nil:
		if s, err := m.cfg.fs.ReadFile(m.slots[l.sub]); err == nil {
			if first, slot0 = m.seatVerdict(l.sub, s, pre, l.handed), s; !first.differs {
				return first, nil
			}
		}
	}
	data := pre
	if err != nil || l.looked == "" || hashBytes(pre) != l.looked {
		data = nil
		err = m.withSeatLocks(l.seat, func() error {
			d, err := m.cfg.fs.ReadFile(m.seatFile(l.seat))
			if err != nil && !isMissing(err) {
				return fmt.Errorf("credslots: read seat %s: %w", m.seatFile(l.seat), err)
			}
			data = d
			return nil
		})
		if err != nil || data == nil {
			return seatReading{}, err
		}
		l.looked = hashBytes(data)
	}
	slot, err := m.cfg.fs.ReadFile(m.slots[l.sub])
	if err != nil {
		return seatReading{}, fmt.Errorf("credslots: read slot %s: %w", m.slots[l.sub], err)
	}
	v := first
	if slot0 == nil || !bytes.Equal(data, pre) || !bytes.Equal(slot, slot0) {
		v = m.seatVerdict(l.sub, slot, data, l.handed) // not the files the first look judged
	}
	if !v.newer {
		if v.foreign {
			return v, fmt.Errorf("credslots: seat %s of %s: %s: %w", l.seat, l.sub, v.why, ErrIdentityDrift)
		}
		return v, nil
	}
	mu, err := m.beginMutation()
	if err != nil {
		return v, err
	}
	defer mu.end()
	if err := mu.verify(); err != nil {
		return v, err
	}
	// The slot may have changed while no lock was held: decide again.
	slot, err = m.cfg.fs.ReadFile(m.slots[l.sub])
	if err != nil {
		return v, fmt.Errorf("credslots: read slot %s: %w", m.slots[l.sub], err)
	}
	if v = m.seatVerdict(l.sub, slot, data, l.handed); !v.newer {
		return v, nil
	}
	if err := m.takeBack(opSync, l.sub, l.seat, slot, data, "wrote back a newer login from the seat"); err != nil {
		if landed(err) {
			_ = l.wroteBack(v) // the seat's CLI rotates the login now in the slot
		}
		return v, err
	}
	return v, l.wroteBack(v)
}

// wroteBack records that the slot now holds the seat's login v: the next
// refresh in the seat rotates that one, so it is what was handed. The
// caller holds l.mu.
func (l *Lease) wroteBack(v seatReading) error {
	l.handed = v.cred.fingerprint
	if r, ok := l.m.leaseRecord(l.sub); ok && r.Seat == l.seat {
		r.Handed = l.handed
		if err := l.m.writeLeaseRecord(r); err != nil {
			return err
		}
	}
	return nil
}

// Release ends the lease. Under the Manager's locks and then the seat's CLI
// locks (so that no refresh lands meanwhile), a newer login in the seat is
// written back into the slot as [Lease.Sync] would; a login there that is
// neither the slot's nor newer (an older copy, another identity) is kept
// as a backup generation, never lost; then the login is removed from the
// seat (for Claude Code only its claudeAiOauth member; the seat's other
// keys stay). The record is marked released, the release journaled, and
// the lease's lock closed. A process that inherited [Lease.File] keeps the
// lock held until it exits; the next lease then recovers the seat again.
// Released with no such process, the seat is vacated: a login put there
// later (the directory reused by hand) is never taken for the lease's.
// The seat's CLI locks are first waited for alone, so that a seat lock
// held for long (up to the lock timeout: an error wrapping
// [ErrLockTimeout]) never holds up a refresh at home.
// On an error the lease stays held, the login in the seat. Calling
// Release again does nothing.
func (l *Lease) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	m := l.m
	// The seat's CLI locks are waited for first, holding none at home: a
	// refresh in flight in the seat, or a lock left there by a CLI killed
	// in the middle of one, must not hold up a refresh at home for the
	// lock timeout. They are taken again below, in the order every change
	// takes them (home's, then the seat's).
	if err := m.withSeatLocks(l.seat, func() error { return nil }); err != nil {
		return err
	}
	mu, err := m.beginMutation()
	for try := 1; errors.Is(err, ErrLockTimeout) && try < 3; try++ {
		mu, err = m.beginMutation() // others' changes held the lock: the login must still come back
	}
	if err != nil {
		return err
	}
	defer mu.end()
	if err := mu.verify(); err != nil {
		return err
	}
	err = m.withSeatLocks(l.seat, func() error {
		data, err := m.cfg.fs.ReadFile(m.seatFile(l.seat))
		switch {
		case isMissing(err):
			return nil
		case err != nil:
			return fmt.Errorf("credslots: read seat %s: %w", m.seatFile(l.seat), err)
		}
		slot, err := m.cfg.fs.ReadFile(m.slots[l.sub])
		if err != nil && !isMissing(err) {
			return fmt.Errorf("credslots: read slot %s: %w", m.slots[l.sub], err)
		}
		switch v := m.seatVerdict(l.sub, slot, data, l.handed); {
		case v.newer:
			if err := m.takeBack(opSync, l.sub, l.seat, slot, data, "wrote back a newer login from the seat at release"); err != nil {
				if landed(err) {
					_ = l.wroteBack(v)
				}
				return err
			}
			// Should the seat fail to clear, the lease stays held with
			// this login handed: its next refresh is written back too. A
			// failed update of the record stops nothing: the release goes
			// on, and a recovery finds the write-back in the journal.
			if err := l.wroteBack(v); err != nil {
				m.cfg.logger.Warn("lease record update failed", "sub", l.sub, "reason", err.Error())
			}
		case v.keep:
			if err := m.keepSeatLogin(l.sub, l.seat, v, data, "kept a seat login that is not written back as a backup"); err != nil {
				return err
			}
		}
		return m.clearSeat(l.seat)
	})
	if err != nil {
		return err
	}
	l.released = true
	// The lock closed first, so that the record can say whether another
	// process (one that inherited it) still holds it; the package's lock,
	// held, keeps every recovery out meanwhile.
	cerr := l.file.Close()
	var rerr error
	if r, ok := m.leaseRecord(l.sub); ok && r.Seat == l.seat {
		now := m.cfg.now().UTC()
		r.Released = &now
		r.Vacated = cerr == nil && !m.leaseHeld(l.sub)
		rerr = m.writeLeaseRecord(r)
	}
	m.journalLease(opRelease, l.sub, l.seat, "released from "+l.seat, "")
	m.cfg.logger.Info("released", "sub", l.sub, "path", l.seat)
	return errors.Join(rerr, cerr)
}

// leaseNote says, for a refusal, who holds sub's lease.
func leaseNote(info LeaseInfo) string {
	if info.probe != nil {
		note := fmt.Sprintf("perhaps leased: its lease lock cannot be probed (%v)", info.probe)
		if info.Seat != "" {
			note += "; its lease record names " + info.Seat
		}
		return note
	}
	if info.Seat == "" {
		return "held by a process that inherited its lock"
	}
	return fmt.Sprintf("leased to %s (pid %d, since %s)", info.Seat, info.PID, formatTime(info.Since))
}
