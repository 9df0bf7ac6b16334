package credslots

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/gptme/credslots/internal/credfile"
	"github.com/gptme/credslots/internal/swap"
)

// Status is a snapshot of one creds dir's health, for dashboards, cron checks
// and the credslots command. It marshals to stable JSON with snake_case keys
// and times in RFC 3339, UTC.
type Status struct {
	CredsDir  string       `json:"creds_dir"`
	Format    string       `json:"format"`
	CheckedAt time.Time    `json:"checked_at"`
	Live      LiveStatus   `json:"live"`
	Active    string       `json:"active"` // "" when no configured slot is active
	Drift     *DriftInfo   `json:"drift"`  // nil when there is no live path
	Slots     []SlotStatus `json:"slots"`  // configured order
	// Problems lists what needs attention; empty (never nil) when healthy.
	Problems []string `json:"problems"`
	Healthy  bool     `json:"healthy"`
}

// LiveStatus describes the live path.
type LiveStatus struct {
	Path string `json:"path"`
	// Kind is "missing", "symlink", "broken-symlink", "file" or "other".
	Kind string `json:"kind"`
	// Target is the symlink's target as written; "" for anything else.
	Target string `json:"target"`
}

// SlotStatus describes one configured slot.
type SlotStatus struct {
	Sub         string            `json:"sub"`
	Path        string            `json:"path"`
	Exists      bool              `json:"exists"`
	Expiry      *time.Time        `json:"expiry"` // nil when unknown
	Fresh       bool              `json:"fresh"`
	FreshReason string            `json:"fresh_reason"`
	Identity    IdentityDriftInfo `json:"identity"`
	Mode        string            `json:"mode"` // permission bits, "0600"; "" when missing
	Active      bool              `json:"active"`
	// RestingUntil is set while the sub rests (see [Manager.Rest]).
	RestingUntil *time.Time `json:"resting_until"`
	RestReason   string     `json:"rest_reason,omitempty"`
	// Invalid is true while the server's rejection of the sub's login
	// stands (see [Manager.MarkInvalid]).
	Invalid       bool   `json:"invalid"`
	InvalidReason string `json:"invalid_reason,omitempty"`
	// Headroom is what the last observed usage leaves of the plan (see
	// [Manager.Observe]); nil when unknown.
	Headroom *float64 `json:"headroom,omitempty"`
	// Email is the account's e-mail address the sub's identity sidecar
	// remembers (Claude Code's oauthAccount.emailAddress); "" when none.
	Email string `json:"email,omitempty"`
	// Lease is the sub's held lease (see [Manager.Lease]); nil when none.
	Lease *LeaseInfo `json:"lease,omitempty"`
}

// Status inspects the creds dir without changing anything and reports the
// live path's kind and target, the active sub, the hash drift, every slot's
// expiry, freshness, identity drift and file mode, and the problems found:
// a missing or unreadable live path, drift, a broken link, the active slot
// not fresh, identity drift, slots holding one login (the same refresh
// token, which a refresh through one ends in the others), no fresh slot at
// all, a credential file readable by group or others, and a creds dir
// writable by group or others. It returns an error only when the creds dir
// itself cannot be inspected.
func (m *Manager) Status() (Status, error) {
	fsys := m.cfg.fs
	dirInfo, err := fsys.Stat(m.dir)
	if err != nil {
		return Status{}, fmt.Errorf("credslots: status of creds dir %s: %w", m.dir, err)
	}
	st := Status{
		CredsDir:  m.dir,
		Format:    m.cfg.format.Name(),
		CheckedAt: m.cfg.now().UTC(),
		Live:      LiveStatus{Path: m.live},
		Slots:     make([]SlotStatus, 0, len(m.subs)),
		Problems:  []string{},
	}
	problem := func(format string, args ...any) { st.Problems = append(st.Problems, fmt.Sprintf(format, args...)) }

	if !dirInfo.IsDir() {
		problem("creds dir %s is not a directory", m.dir)
	} else if dirInfo.Mode().Perm()&0o022 != 0 {
		problem("creds dir %s is writable by group or others (mode %04o)", m.dir, dirInfo.Mode().Perm())
	}

	var sidecars []sidecarRead
	drift, live, slots, derr := m.liveDriftReading(func() (r slotReads) {
		r, sidecars = m.readSlotsAndSidecars(true)
		return r
	})
	st.Live.Kind = live.Kind.String()
	if live.Kind == kindSymlink || live.Kind == kindBrokenSymlink {
		st.Live.Target, _ = fsys.Readlink(m.live)
	}
	st.Drift = drift
	st.Active, _ = m.ActiveSubscription()
	switch {
	case derr != nil:
		problem("live path %s is unreadable: %v", m.live, errors.Unwrap(derr))
	case live.Kind == kindMissing:
		problem("live path %s is missing", m.live)
	case live.Kind == kindBrokenSymlink:
		problem("live symlink is broken: %s does not exist or is not a readable file", st.Live.Target)
	case drift.Drift && live.Kind == kindFile && m.newLoginShown() != "":
		problem("%s", newLoginAdvice(m.newLoginShown()))
	case drift.Drift && live.Kind == kindFile && m.newIdentityLogin(live.Data):
		problem("%s", m.newIdentityAdvice())
	case drift.Drift && live.Kind == kindFile:
		problem("live file matches no slot (drift, typically after the CLI refreshed its token): heal it into the slot that was active")
	case drift.Drift:
		problem("live symlink points at %s, which matches no configured slot", st.Live.Target)
	}
	if live.Kind == kindFile {
		m.checkMode(&st, "live file", m.live, live.Perm)
	}

	anyFresh := false
	usableOthers, passed := 0, []string(nil)
	now := m.cfg.now()
	state, serr := m.readState()
	if serr != nil {
		problem("%s", strings.TrimPrefix(serr.Error(), "credslots: "))
	}
	// Every lease lock lives in the leases directory: when there is none,
	// no sub is leased, and probing each sub's lock would cost a failed
	// open per slot. Any other answer probes them all.
	_, lerr := fsys.Lstat(m.leasesDir())
	noLeases := errors.Is(lerr, fs.ErrNotExist)
	logins := make([]string, len(m.subs)) // each slot's login, for copies
	owns := make([]bool, len(m.subs))     // its sidecar records its identity
	verify := make([]int, len(m.subs))    // its "verify, then capture" problem, +1
	for i, sub := range m.subs {
		path := m.slots[sub]
		ss := SlotStatus{Sub: sub, Path: path, Active: sub == st.Active}
		data, rerr := slots.data[sub], slots.errs[sub]
		ss.Exists = !isMissing(rerr)
		if rerr != nil && ss.Exists {
			problem("slot %s: cannot read %s: %v", sub, filepath.Base(path), errors.Unwrap(rerr))
		}
		var c credential
		if rerr == nil {
			c = m.cfg.format.parse(data)
		}
		if c.hasExpiry() {
			exp := c.expiry
			ss.Expiry = &exp
		}
		ss.Fresh, ss.FreshReason = freshnessOf(m.cfg.format, path, c, rerr, m.cfg.grace, now)
		anyFresh = anyFresh || ss.Fresh
		side := sidecars[i]
		stored, acct, ierr := side.fp, side.account, side.err
		id, ierr := m.verdictFrom(sub, c.fingerprint, stored, ierr)
		logins[i], owns[i] = c.login, ierr == nil && stored != "" && stored == c.fingerprint
		ss.Identity, ss.Email = id, emailOf(acct)
		if ierr != nil {
			problem("slot %s: fingerprint unreadable: %v", sub, errors.Unwrap(ierr))
		} else if id.Drift && id.CurrentFingerprint != "" && ss.Active && live.Kind == kindSymlink && m.cfg.format.LoginWritesThrough() {
			// The CLI's login writes through the link, over the slot it
			// points at: a capture would file that login as sub's.
			problem("slot %s: identity drift: %s: a login wrote through the live link, over %s's own; if it is %s's own account logged in again, credslots capture %s; else, to keep it as a sub of its own, move it out of the slot (rm %s; mv %s %s), then credslots add NAME, and log in to %s again later, the link removed first, and run credslots add %s --force",
				sub, id.Reason, sub, sub, sub, m.live, path, m.live, sub, sub)
			verify[i] = len(st.Problems)
		} else if id.Drift && id.CurrentFingerprint != "" {
			problem("slot %s: identity drift: %s; verify the login, then credslots capture %s", sub, id.Reason, sub)
			verify[i] = len(st.Problems)
		} else if id.Drift {
			problem("slot %s: identity drift: %s", sub, id.Reason)
		}
		if ss.Exists {
			perm, read := slots.perms[sub]
			if !read {
				if fi, err := fsys.Stat(path); err == nil {
					perm, read = fi.Mode().Perm(), true
				}
			}
			if read {
				ss.Mode = m.checkMode(&st, "slot "+sub, path, perm)
			}
		}
		if rs := state[sub]; rs.resting(now) {
			ss.RestingUntil, ss.RestReason = rs.RestUntil, rs.RestReason
		}
		ss.Headroom = headroom(state[sub].Usage, now)
		if rs := state[sub]; rs.invalidAt(c.fingerprint) {
			ss.Invalid, ss.InvalidReason = true, rs.InvalidReason
			if ss.Active {
				problem("active slot %s was rejected by the server: %s; switch to another sub (credslots switch --next)", sub, rs.InvalidReason)
			}
		}
		if !noLeases {
			if info, held := m.heldLease(sub); held {
				ss.Lease = &info
				if info.probe != nil {
					problem("sub %s: its lease lock cannot be probed (%v): it counts as leased", sub, info.probe)
				}
			}
		}
		if ss.Active && !ss.Fresh {
			problem("active slot %s is not fresh: %s", sub, ss.FreshReason)
		}
		st.Problems = append(st.Problems, m.slotProblems(ss, c, data, rerr)...)
		if !ss.Active {
			if why := passedOver(ss, ierr, serr); why == "" {
				usableOthers++
			} else {
				passed = append(passed, sub+": "+why)
			}
		}
		st.Slots = append(st.Slots, ss)
	}
	if p := m.unfiledLogin(live.Kind, st.Active, sidecars, noLeases); p != "" {
		problem("%s", p)
	}
	copies, copied := m.copiedLogins(logins, owns)
	for i := range copied {
		// Its login is another slot's: capture refuses it, so the copy's
		// problem says what to do instead.
		if at := verify[i] - 1; at >= 0 {
			st.Problems[at] = fmt.Sprintf("slot %s: identity drift: %s", m.subs[i], st.Slots[i].Identity.Reason)
		}
	}
	st.Problems = append(st.Problems, copies...)
	st.Problems = append(st.Problems, m.strandedLogins()...)
	if !noLeases {
		homeLogin := ""
		if live.Kind == kindFile {
			homeLogin = m.cfg.format.parseFor(live.Data, credfile.Login).login
		}
		st.Problems = append(st.Problems, m.leasedCopies(st.Slots, logins, homeLogin)...)
	}
	if !anyFresh {
		problem("no fresh slot: every configured slot is missing, unreadable, expired or within grace")
	} else if p := rotationProblem(st.Active, usableOthers, passed, m.addAdvice()); p != "" {
		problem("%s", p)
	}
	m.changeProblems(&st)
	st.Healthy = len(st.Problems) == 0
	return st, nil
}

// copiedLogins lists, as problems, the slots that hold one login: the same
// refresh token, single-use, which a refresh through one slot ends in the
// others. logins holds each configured sub's login ("" for none), owns
// whether its sidecar records the identity it holds. When exactly one of
// the slots is its login's by its sidecar, the others are its copies. The
// groups come in the order of their first slot; copied holds the index of
// every slot a problem names but the original.
func (m *Manager) copiedLogins(logins []string, owns []bool) (problems []string, copied map[int]bool) {
	holders := make(map[string][]int, len(logins))
	for i, login := range logins {
		if login != "" {
			holders[login] = append(holders[login], i)
		}
	}
	for i, login := range logins {
		group := holders[login]
		if login == "" || len(group) < 2 || group[0] != i {
			continue
		}
		if copied == nil {
			copied = map[int]bool{}
		}
		owner, owners, names := -1, 0, make([]string, len(group))
		for n, k := range group {
			names[n] = m.subs[k]
			if owns[k] {
				owner, owners = k, owners+1
			}
		}
		if owners != 1 {
			for _, k := range group {
				copied[k] = true
			}
			problems = append(problems, fmt.Sprintf("slots %s hold one login (the same refresh token): a refresh through one would end the others; find whose login it is (credslots backups lists each slot's earlier ones), then log in to each other sub's own account and capture it",
				strings.Join(names, ", ")))
			continue
		}
		for _, k := range group {
			if k != owner {
				copied[k] = true
				problems = append(problems, copiedLogin(m.subs[k], m.subs[owner]))
			}
		}
	}
	return problems, copied
}

// checkMode records a problem when a credential file is readable by group or
// others, and returns its permission bits as "0600".
func (m *Manager) checkMode(st *Status, what, path string, perm fs.FileMode) string {
	if perm&0o044 != 0 {
		st.Problems = append(st.Problems,
			fmt.Sprintf("%s %s is readable by group or others (mode %04o)", what, filepath.Base(path), perm))
	}
	return octal4(perm)
}

// octal4 is fmt.Sprintf("%04o", perm) for permission bits, without fmt:
// Status writes one for every slot.
func octal4(perm fs.FileMode) string {
	if perm > 0o7777 {
		return fmt.Sprintf("%04o", perm)
	}
	b := [4]byte{'0', '0', '0', '0'}
	for i := 3; perm != 0; i-- {
		b[i] = byte('0' + perm&7)
		perm >>= 3
	}
	return string(b[:])
}

// unfiledLogin is the problem when a heal filed a /login under the active
// sub: the journal's newest change is a heal into the active sub, the link
// is back on its slot, and .claude.json now shows an account no slot
// remembers, not the one the active sub remembers (its account reached
// .claude.json only after the heal). It holds only where that account can
// be no configured sub's: every sub remembers its account, and no sub is
// leased (a seat's Claude Code writes its account into the .claude.json
// home shares). "" otherwise. sidecars are the subs' sidecars, in
// configured order.
func (m *Manager) unfiledLogin(kind swap.Kind, active string, sidecars []sidecarRead, noLeases bool) string {
	if kind != kindSymlink || active == "" || !noLeases || !m.cfg.format.carriesState() {
		return ""
	}
	var mine []byte
	for i, sub := range m.subs {
		if sidecars[i].account == nil {
			return "" // an account no slot remembers may be this sub's
		}
		if sub == active {
			mine = sidecars[i].account
		}
	}
	entries, err := m.readJournal()
	if err != nil {
		return ""
	}
	if last, why := lastLiveChange(entries); why != "" || last.Op != opHeal || last.Sub != active {
		return ""
	}
	shown := m.shownAccount()
	if shown == nil || sameAccount(shown, mine) || m.accountOwner(shown, "") != "" {
		return ""
	}
	return fmt.Sprintf(".claude.json shows %s, which no slot remembers, while the live link points at %s, which remembers %s, and a heal into %s was the last change: "+
		"a /login to %s may have been filed under %s (its account reached .claude.json only after the heal); "+
		"if %s's slot holds that login, %s's own earlier one is among its backups (credslots backups %s)",
		accountLabel(shown), active, accountLabel(mine), active, accountLabel(shown), active, active, active, active)
}
