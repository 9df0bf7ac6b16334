package credslots

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/gptme/credslots/internal/credfile"
	"github.com/gptme/credslots/internal/disk"
)

// Identity-drift reasons, one per row of the matrix in [Manager.DetectSlotIdentityDrift].
const (
	reasonNoneNone = "no fingerprint stored and slot missing/unreadable"
	reasonNoneSome = "no fingerprint stored yet — call CaptureSlotFingerprint after a fresh login"
	// These two name the format's identity field; for [ClaudeCode] it is
	// "refresh token".
	reasonSomeNone   = "slot is missing or has no %s; cannot verify identity"
	reasonChanged    = "%s changed since last capture — slot identity may have been replaced"
	reasonFingerprOK = "fingerprint matches"
	// reasonInterrupted is no drift: a heal or restore wrote the slot and
	// stopped before it captured the fingerprint.
	reasonInterrupted = "an interrupted heal, restore or lease write-back wrote this login into the slot; the next heal or switch completes it"
)

// interruptedHealWrote reports whether the journal holds a heal, adopt,
// restore or lease write-back into sub that wrote the login with
// fingerprint fp and then stopped before the capture (its intent has no outcome, or it is done):
// the slot holds the login that change wrote, not another's.
func (m *Manager) interruptedHealWrote(sub, fp string) bool {
	entries, err := m.readJournal()
	if err != nil {
		return false
	}
	// The newest change that wrote sub's slot decides; a failed one
	// changed nothing.
	failed := map[string]bool{}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		switch {
		case e.Sub != sub || (e.Op != opHeal && e.Op != opAdopt && e.Op != opRestore && e.Op != opSync && e.Op != opRecover):
		case e.Phase == phaseFailed:
			failed[e.ID] = true
		case e.Phase == phaseDone || !failed[e.ID]:
			return e.Fingerprint != "" && e.Fingerprint == fp
		}
	}
	return false
}

// IdentityDriftInfo is the result of [Manager.DetectSlotIdentityDrift].
type IdentityDriftInfo struct {
	Drift              bool   `json:"drift"`
	Sub                string `json:"sub"`
	StoredFingerprint  string `json:"stored_fingerprint"`  // "" when none stored
	CurrentFingerprint string `json:"current_fingerprint"` // "" when the slot is missing or has no refresh token
	Reason             string `json:"reason"`
}

// sidecar is the identity sidecar's JSON document.
type sidecar struct {
	CapturedAt         string `json:"captured_at"`
	RefreshTokenSHA256 string `json:"refresh_token_sha256"`
	Slot               string `json:"slot"`
	// OAuthAccount is Claude Code's account metadata for the slot, from
	// .claude.json, as raw JSON; absent when none was captured.
	OAuthAccount json.RawMessage `json:"oauth_account,omitempty"`
}

// ComputeSlotFingerprint returns the sha256 hex of the refresh token's UTF-8
// bytes in a Claude Code credential file. It reports false when the file is
// missing, not JSON, or has no non-empty claudeAiOauth.refreshToken string.
// The token itself is never returned or logged.
func ComputeSlotFingerprint(path string) (string, bool) {
	buf := disk.GetBuffer()
	data, err := disk.ReadRegularInto(path, *buf, disk.MaxFileSize)
	fp := ""
	if err == nil {
		fp = ClaudeCode.parseFor(data, credfile.Identity).fingerprint
	}
	disk.PutBuffer(buf, data)
	return fp, fp != ""
}

// ReadStoredFingerprint returns the fingerprint last captured for sub. It
// reports false for an unknown sub, or a sidecar that is missing, malformed,
// or whose refresh_token_sha256 is not a non-empty string.
func (m *Manager) ReadStoredFingerprint(sub string) (string, bool) {
	if !m.knows(sub) {
		return "", false
	}
	fp, _ := m.storedFingerprint(sub)
	return fp, fp != ""
}

// storedFingerprint reads sub's sidecar. A missing or malformed sidecar is
// "none"; any other read failure is an error, so that a check never mistakes
// an unreadable sidecar for an absent one.
//
// The sidecar is read into a pooled buffer and parsed once; the
// fingerprint is a copy, so nothing of the buffer outlives the call.
func (m *Manager) storedFingerprint(sub string) (string, error) {
	buf := disk.GetBuffer()
	path := m.prints[sub]
	data, err := m.cfg.fs.ReadFileInto(path, *buf)
	fp := ""
	if err == nil {
		fp = m.sidecarPrint(path, data)
	}
	disk.PutBuffer(buf, data)
	return fp, sidecarReadErr(sub, err)
}

// sidecarReadErr is what a failed read of sub's sidecar means: nothing for
// a missing one, an error otherwise.
func sidecarReadErr(sub string, err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("credslots: read fingerprint of %q: %w", sub, err)
}

// storedSidecar reads sub's sidecar: the fingerprint and the remembered
// oauthAccount (raw JSON, compacted; nil when none), from one parse.
func (m *Manager) storedSidecar(sub string) (string, []byte, error) {
	data, err := m.cfg.fs.ReadFile(m.prints[sub])
	if err != nil {
		return "", nil, sidecarReadErr(sub, err)
	}
	fp, acct := credfile.Sidecar(data)
	if acct != nil {
		acct = compactJSON(acct)
	}
	return fp, acct, nil
}

// parseSidecar reads a sidecar document's fingerprint.
func parseSidecar(data []byte) (string, bool) {
	fp, _ := credfile.Sidecar(data)
	return fp, fp != ""
}

// currentFingerprint reads sub's slot and returns its identity
// fingerprint: one read into a pooled buffer, the identity key alone
// parsed and hashed.
func (m *Manager) currentFingerprint(sub string) string { return m.fingerprintAt(m.slots[sub]) }

// fingerprintAt is currentFingerprint for the slot at path.
func (m *Manager) fingerprintAt(path string) string {
	return m.readAt(path, credfile.Identity).fingerprint
}

// currentLogin reads sub's slot and returns its login: the hash of the
// refresh token, which a second slot holding it too would lose.
func (m *Manager) currentLogin(sub string) string {
	return m.readAt(m.slots[sub], credfile.Login).login
}

// slotWithLogin returns the first configured sub other than except whose
// slot holds login (a hash, as currentLogin returns); "" when none.
func (m *Manager) slotWithLogin(login, except string) string {
	return m.slotHolding(login, except, m.currentLogin)
}

// slotWithIdentity returns the first configured sub other than except
// whose slot's identity fingerprint is fp; "" when none.
func (m *Manager) slotWithIdentity(fp, except string) string {
	return m.slotHolding(fp, except, m.currentFingerprint)
}

// slotHolding returns the first configured sub other than except for
// which of (a hash of its slot) is v; "" when none, or when v is "".
func (m *Manager) slotHolding(v, except string, of func(sub string) string) string {
	if v == "" {
		return ""
	}
	for _, sub := range m.subs {
		if sub != except && of(sub) == v {
			return sub
		}
	}
	return ""
}

// readAt reads the credential file at path into a pooled buffer and parses
// only what want names; the zero credential when it cannot be read.
func (m *Manager) readAt(path string, want credfile.Want) credential {
	buf := disk.GetBuffer()
	data, err := m.cfg.fs.ReadFileInto(path, *buf)
	var c credential
	if err == nil {
		c = m.parsed(path, data, want)
	}
	disk.PutBuffer(buf, data)
	return c
}

// CaptureSlotFingerprint records the identity of sub's slot in its sidecar
// (mode 0600, written atomically) and returns the fingerprint. When the slot
// is missing or has no identity it returns "", nil and writes nothing. An
// unknown sub returns an error wrapping [ErrUnknownSubscription]; waiting too
// long for the manager's lock returns [ErrLockTimeout]. A login that is not
// sub's to record is refused with an error wrapping [ErrIdentityDrift]: one
// another slot holds too (a copy: a refresh token is single-use, so a
// refresh through one slot would end the other), or the live file's login
// that the journal says is another sub's refresh, copied into sub's slot.
//
// Call it after a fresh login establishes a slot's identity: an invalid mark
// (see [Manager.MarkInvalid]) that a heal or restore carried onto the
// slot's login is cleared, since a heal cannot tell a new login of the
// same account from a refresh; a mark on the very login the server rejected
// stays. [Manager.SwitchTo] and [Manager.HealDriftTo] capture the
// fingerprint themselves after a successful change, and never clear a mark.
func (m *Manager) CaptureSlotFingerprint(sub string) (string, error) {
	return m.captureSlotFingerprint(context.Background(), sub)
}

// CaptureSlotFingerprintContext is [Manager.CaptureSlotFingerprint] whose
// wait for the package's lock ends with ctx: a done ctx records nothing and
// returns an error wrapping ctx.Err().
func (m *Manager) CaptureSlotFingerprintContext(ctx context.Context, sub string) (string, error) {
	if err := notStarted(ctx); err != nil {
		return "", err
	}
	return m.captureSlotFingerprint(ctx, sub)
}

func (m *Manager) captureSlotFingerprint(ctx context.Context, sub string) (string, error) {
	if !m.knows(sub) {
		return "", fmt.Errorf("credslots: %s: %w", m.unknownSub(sub), ErrUnknownSubscription)
	}
	data, err := m.cfg.fs.ReadFile(m.slots[sub])
	if err != nil && !isMissing(err) {
		return "", fmt.Errorf("credslots: read slot %s: %w", m.slots[sub], err)
	}
	if err != nil || m.cfg.format.parse(data).fingerprint == "" {
		return "", nil // nothing to capture: not even the lock file is created
	}
	mu, err := m.beginOwnMutation(ctx) // only the package's files change
	if err != nil {
		return "", err
	}
	defer mu.end()
	m.sweepIfDue()
	// Checked under the lock (see captureRefusal).
	if err := m.captureRefusal(sub); err != nil {
		return "", err
	}
	fp, err := m.captureLocked(sub, true, true)
	if err == nil && fp != "" {
		err = m.record(JournalEntry{Time: m.cfg.now(), Op: opCapture, Phase: phaseDone, Sub: sub, Reason: "fingerprint captured", Fingerprint: fp})
	}
	if err == nil && fp != "" {
		err = m.clearCarriedMarkLocked(sub, fp)
	}
	if err == nil && fp != "" {
		m.announce(mu, Change{Op: opCapture, Sub: sub, Reason: "fingerprint captured"})
	}
	return fp, err
}

// clearCarriedMarkLocked clears sub's invalid mark when it stands on the
// login with fingerprint fp only because a heal or restore carried it
// there (a heal cannot tell a new login of the same account from a
// refresh): a capture says the slot holds a fresh login. A mark on the
// very login the server rejected stays.
func (m *Manager) clearCarriedMarkLocked(sub, fp string) error {
	state, err := m.readState()
	if err != nil {
		return err
	}
	if st := state[sub]; st.invalidAt(fp) && len(st.InvalidLogins) > 0 {
		// The identity is not the login: the mark names the logins it was
		// placed on, and the slot's is another one, a new login.
		if cur := m.currentLogin(sub); cur != "" && !slices.Contains(st.InvalidLogins, cur) {
			return m.clearMarkLocked(sub)
		}
		return nil
	}
	if st := state[sub]; !st.invalidAt(fp) || st.InvalidFP == fp {
		return nil
	}
	// Only a login a heal or restore wrote since the rejection: the slot's
	// older login, marked with it, stays marked.
	entries, err := m.readJournal()
	if err != nil {
		return err
	}
	carried := false
	for i := len(entries) - 1; i >= 0 && !carried; i-- {
		e := entries[i]
		if e.Sub != sub {
			continue
		}
		if e.Op == opInvalid && e.Fingerprint != "" {
			break // the rejection: nothing wrote fp since
		}
		carried = (e.Op == opHeal || e.Op == opRestore) && e.Phase == phaseDone && e.Fingerprint == fp
	}
	if !carried {
		return nil
	}
	return m.clearMarkLocked(sub)
}

// clearMarkLocked clears sub's invalid mark, for a capture of a login the
// server did not reject, and journals it.
func (m *Manager) clearMarkLocked(sub string) error {
	if err := m.updateStateLocked(sub, func(st *subState) {
		st.Invalid, st.InvalidFP, st.InvalidAlso, st.InvalidLogins, st.InvalidReason = false, "", nil, nil, ""
	}); err != nil {
		return err
	}
	return m.record(JournalEntry{Time: m.cfg.now(), Op: opInvalid, Phase: phaseDone, Sub: sub,
		Reason: "mark cleared: the login captured is not the one the server rejected"})
}

// captureLocked is [Manager.CaptureSlotFingerprint] for a caller holding the lock.
// Unless always, a sidecar that already holds the fingerprint (and the
// account, when one is captured) is left as it is, which spares a switch
// between known slots two fsyncs. With account, and while sub is active,
// Claude Code's oauthAccount from .claude.json is remembered too (see
// [WithCarryState]); a sidecar keeps the account it had otherwise.
func (m *Manager) captureLocked(sub string, always, account bool) (string, error) {
	return m.captureKnown(sub, "", always, account)
}

// captureKnown is captureLocked for a slot whose fingerprint the caller
// already knows (fp), so that the slot is not read again; "" reads it.
func (m *Manager) captureKnown(sub, fp string, always, account bool) (string, error) {
	return m.captureWith(sub, fp, sidecarRead{}, always, account)
}

// sidecarRead is one read of a sub's sidecar, kept so that a change reads
// it once; the zero value is "not read yet".
type sidecarRead struct {
	done    bool
	fp      string
	account []byte
	err     error
}

// readSidecar reads sub's sidecar once.
func (m *Manager) readSidecar(sub string) sidecarRead {
	fp, acct, err := m.storedSidecar(sub)
	return sidecarRead{done: true, fp: fp, account: acct, err: err}
}

// captureWith is captureKnown with sub's sidecar as side read it, when it
// was read already.
func (m *Manager) captureWith(sub, fp string, side sidecarRead, always, account bool) (string, error) {
	if fp == "" {
		fp = m.currentFingerprint(sub)
	}
	if fp == "" {
		return "", nil
	}
	if !side.done {
		side = m.readSidecar(sub)
	}
	stored, storedAccount, serr := side.fp, side.account, side.err
	var acct []byte
	if account {
		acct = m.currentAccount(sub)
		if other := m.accountOwner(acct, sub); other != "" {
			// .claude.json may still show the account of another sub
			// (Claude Code refetches its profile about once a day).
			m.cfg.logger.Warn("account shown is remembered for another sub; not captured", "sub", sub, "other", other)
			acct = nil
		}
	}
	if !always && serr == nil && stored == fp && (acct == nil || bytes.Equal(acct, storedAccount)) {
		return fp, nil
	}
	if acct == nil {
		// A refresh rotates Claude Code's refresh token; the account stays
		// until a capture proves it changed.
		acct = storedAccount
	}
	doc, err := json.MarshalIndent(sidecar{
		CapturedAt:         formatTime(m.cfg.now()),
		RefreshTokenSHA256: fp,
		Slot:               sub,
		OAuthAccount:       acct,
	}, "", "  ")
	if err != nil {
		return "", fmt.Errorf("credslots: encode fingerprint of %q: %w", sub, err)
	}
	if err := m.writeFile(m.prints[sub], append(doc, '\n')); err != nil {
		return "", err
	}
	return fp, nil
}

// DetectSlotIdentityDrift compares sub's stored fingerprint with its slot's
// current one:
//
//	stored  current  Drift  Reason
//	none    none     false  no fingerprint stored and slot missing/unreadable
//	none    some     false  no fingerprint stored yet — call CaptureSlotFingerprint after a fresh login
//	some    none     true   slot is missing or has no refresh token; cannot verify identity
//	a       b≠a      true   refresh token changed since last capture — slot identity may have been replaced
//	a       a        false  fingerprint matches
//
// This catches a login written through the live symlink into a slot, which
// hash drift cannot see because live and slot still match. An unknown sub
// returns an error wrapping [ErrUnknownSubscription]; a sidecar that exists but
// cannot be read returns that error.
func (m *Manager) DetectSlotIdentityDrift(sub string) (IdentityDriftInfo, error) {
	slot, ok := m.slots[sub] // looked up once: it also says that sub is known
	if !ok {
		return IdentityDriftInfo{Sub: sub}, fmt.Errorf("credslots: %s: %w", m.unknownSub(sub), ErrUnknownSubscription)
	}
	return m.identityVerdict(sub, m.fingerprintAt(slot))
}

// identityVerdict applies the matrix to a current fingerprint. It fails only
// when the sidecar exists but cannot be read.
func (m *Manager) identityVerdict(sub, current string) (IdentityDriftInfo, error) {
	stored, err := m.storedFingerprint(sub)
	return m.verdictFrom(sub, current, stored, err)
}

// verdictFrom is identityVerdict for a sidecar already read (stored, or
// the error reading it).
func (m *Manager) verdictFrom(sub, current, stored string, err error) (IdentityDriftInfo, error) {
	info := IdentityDriftInfo{Sub: sub, StoredFingerprint: stored, CurrentFingerprint: current}
	if err != nil {
		return info, err
	}
	switch {
	case stored == "" && current == "":
		info.Reason = reasonNoneNone
	case stored == "":
		info.Reason = reasonNoneSome
	case current == "":
		info.Drift, info.Reason = true, fmt.Sprintf(reasonSomeNone, m.cfg.format.identityName())
	case stored != current && m.interruptedHealWrote(sub, current):
		info.Reason = reasonInterrupted
	case stored != current:
		info.Drift, info.Reason = true, fmt.Sprintf(reasonChanged, m.cfg.format.identityName())
	default:
		info.Reason = reasonFingerprOK
	}
	return info, nil
}

// foreign is why a login must not be written into a sub's slot.
type foreign struct {
	why       string // "" when nothing says the login is another account's
	newLogin  bool   // an account no configured sub remembers
	settling  bool   // a login may be under way: too early to tell
	ambiguous bool   // the evidence to tell is out of sight
}

// foreignLogin checks that the login cred, which the live entry live holds,
// is sub's before a heal (or, with adopt, an adopt) writes it into sub's
// slot. It is another account's when its identity fingerprint is another
// configured slot's, current or captured; for a format whose identity
// survives a refresh, when it differs from sub's captured one; for Claude
// Code, when .claude.json shows an account another sub remembers, or
// another account than sub remembers (a new login); and, for a heal into
// a sub the caller named, when the journal says another sub was live when
// the login was written, unless .claude.json shows sub's own account.
//
// shown is the account .claude.json shows (nil when none). It counts as
// evidence only when it is not the account .claude.json showed right after
// the journal's last change (a switch, or a flip made by hand, leaves it
// showing what it showed): only a change of the shown account since then
// says that a login happened.
func (m *Manager) foreignLogin(sub string, live entry, cred credential, slots slotReads, side sidecarRead, shown []byte, entries []JournalEntry, adopt, named bool) (foreign, error) {
	field, fp := m.cfg.format.identityName(), cred.fingerprint
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
				return foreign{why: fmt.Sprintf("the live file's %s is that of slot %s; it is %s's login (credslots heal %s)", field, other, other, other)}, nil
			}
		}
	}
	stored, mine := side.fp, side.account
	if side.err != nil {
		return foreign{}, side.err
	}
	if m.cfg.format.stableIdentity() || adopt {
		if stored != "" && fp != stored {
			if !adopt {
				// The identity survives a refresh and is no configured
				// slot's: a login to another account.
				return foreign{newLogin: true, why: fmt.Sprintf("the live file's %s differs from the one captured for %s: a new login; file it under a sub of its own (credslots add NAME)", field, sub)}, nil
			}
			return foreign{why: fmt.Sprintf("the live file's %s differs from the one captured for %s: file it under a sub of its own (credslots add NAME), or replace %s's login (credslots add %s --force)", field, sub, sub, sub)}, nil
		}
		if data, ok := slots.data[sub]; ok && adopt && m.cfg.format.parse(data).fingerprint != fp {
			return foreign{why: fmt.Sprintf("slot %s already holds a login with another %s: a refresh of it is healed (credslots heal %s); file a new login under a sub of its own (credslots add NAME), or replace it (credslots add %s --force)", sub, field, sub, sub)}, nil
		}
		if data, ok := slots.data[sub]; ok && !adopt && stored == "" && fp != "" {
			// No identity captured yet (a slot made by hand): the one its
			// slot holds stands for it.
			if cur := m.cfg.format.parse(data).fingerprint; cur != "" && cur != fp {
				return foreign{newLogin: true, why: fmt.Sprintf("the live file's %s differs from the one slot %s holds (none captured for it yet): a new login; file it under a sub of its own (credslots add NAME)", field, sub)}, nil
			}
		}
	}
	last, lwhy := lastLiveChange(entries)
	// baseline: the journal recorded what .claude.json showed after its
	// last change, so a shown account can be told to be news or not.
	baseline := lwhy == "" && last.Account != ""
	if baseline && m.claudeJSONPath() == "" {
		// The journal recorded the account .claude.json showed, and none
		// is found now: looked for in the wrong place (a job run without
		// the variables the CLI has), a refresh and a new login look alike.
		return foreign{ambiguous: true, why: "the journal recorded the account .claude.json showed at the last change, and no .claude.json is found for this creds dir now: " +
			"set $CLAUDE_SECURESTORAGE_CONFIG_DIR (or $CLAUDE_CONFIG_DIR) as the CLI has it, so that a refresh can be told from a new login; if .claude.json is gone for good, Force the heal"}, nil
	}
	if baseline && shown == nil && m.claudeJSONSettling() {
		// The journal recorded an account, and .claude.json, written a
		// moment ago, shows none: what a /login does between dropping the
		// old account and writing the new one (Claude Code 2.1.332 writes
		// the credentials in between). Too early to tell a login from a
		// refresh.
		return foreign{settling: true, why: fmt.Sprintf(".claude.json, written within the last %s, shows no account: a login may be under way; heal once it has settled", loginSettle)}, nil
	}
	if shown != nil && !(baseline && accountID(shown) == last.Account) && m.shownBySeat(shown, last.Time, lwhy == "") {
		// A seat's Claude Code (the account of a sub leased since the last
		// change) may have written it: .claude.json is shared with home.
		// That write and a /login at home look alike.
		owner := m.accountOwner(shown, "")
		refresh := "if the live file is the refresh of the sub that was live, credslots heal NAME --force"
		if lw, why := m.activeIn(live, entries); why == "" {
			refresh = fmt.Sprintf("if the live file is %s's refresh, credslots heal %s --force", lw, lw)
		}
		return foreign{ambiguous: true, why: fmt.Sprintf(".claude.json shows %s, the account %s remembers, and %s was leased since the last change: its seat's Claude Code writes its account into the .claude.json home shares, which looks like a /login as %s at home; %s; after a /login as %s at home, credslots heal %s --force",
			accountLabel(shown), owner, owner, owner, refresh, owner, owner)}, nil
	}
	if baseline && shown != nil && accountID(shown) == last.Account {
		shown = nil // unchanged since the last change: no news of a login
		if adopt {
			// No login happened since: the live file is the refresh of
			// the sub the journal says is live, not a new login.
			if other, why := m.activeIn(live, entries); why == "" && other != sub {
				return foreign{why: fmt.Sprintf("the journal says %s was live when this login was written and .claude.json still shows the account it showed then: it is %s's refreshed login (credslots heal %s); a new login shows its own account in .claude.json (if it is one all the same, credslots add %s --force)",
					other, other, other, sub)}, nil
			}
		}
	}
	if shown != nil {
		if other := m.accountOwner(shown, sub); other != "" {
			if lw, why := m.activeIn(live, entries); why == "" && lw != other && !baseline {
				// The journal disagrees and recorded no account to tell
				// news from a cached one: only the person knows.
				return foreign{why: fmt.Sprintf(".claude.json shows %s, the account %s remembers, but the journal says %s was live and recorded no account to compare with: after a /login as %s, credslots heal %s --force; else (an account shown from before) credslots heal %s --force",
					accountLabel(shown), other, lw, other, other, lw)}, nil
			}
			return foreign{why: fmt.Sprintf(".claude.json shows %s, the account %s remembers: it is %s's login (credslots heal %s)",
				accountLabel(shown), other, other, other)}, nil
		}
		if mine != nil && !sameAccount(shown, mine) {
			if adopt {
				return foreign{why: fmt.Sprintf("slot %s remembers %s, but .claude.json shows %s: file it under a sub of its own (credslots add NAME), or replace %s's login (credslots add %s --force)", sub, accountLabel(mine), accountLabel(shown), sub, sub)}, nil
			}
			return foreign{newLogin: true, why: fmt.Sprintf(".claude.json shows %s, not %s's %s: a new login; file it under a sub of its own (credslots add NAME)",
				accountLabel(shown), sub, accountLabel(mine))}, nil
		}
	}
	if named {
		// .claude.json showing sub's own account overrides the journal only
		// as news: changed since a recorded baseline (a /login to sub).
		if other, why := m.activeIn(live, entries); why == "" && other != sub && !(baseline && shown != nil && mine != nil && sameAccount(shown, mine)) {
			return foreign{why: fmt.Sprintf("the journal says %s was live when this login was written: it is likely %s's refreshed login (credslots heal %s); if it is a new login of %s's account, credslots heal %s --force",
				other, other, other, sub, sub)}, nil
		}
	}
	return foreign{}, nil
}

// liveLoginOf returns the sub whose login the drifted live file holds, as
// far as the journal tells: the sub it says was live when the file was
// written, unless the checks of a heal into that sub say the login is
// another account's (a new login, another slot's); "" when unknown.
func (m *Manager) liveLoginOf(live entry) string {
	entries, err := m.readJournal()
	if err != nil {
		return ""
	}
	owner, why := m.activeIn(live, entries)
	if why != "" {
		return ""
	}
	f, err := m.foreignLogin(owner, live, m.cfg.format.parse(live.Data), m.readSlots(), m.readSidecar(owner), m.shownAccount(), entries, false, false)
	if err != nil || f.why != "" {
		return ""
	}
	return owner
}

// backwards returns why healing cred into sub's slot would step backwards,
// or "": the slot already holds a login of the same account that expires
// later, so the live one is an older copy put back (by a sync tool or cp)
// whose refresh token is likely used up.
func (m *Manager) backwards(sub string, cred credential, slots slotReads) string {
	data, ok := slots.data[sub]
	if !ok {
		return ""
	}
	have := m.cfg.format.parse(data)
	if !have.hasExpiry() || !cred.hasExpiry() || !cred.expiry.Before(have.expiry) {
		return ""
	}
	return fmt.Sprintf("the live login expires at %s, before the one slot %s holds (%s): an older copy put back, its refresh token likely used up; switch back to %s (credslots switch %s --force keeps the older copy as a backup), or Force the heal",
		formatTime(cred.expiry), sub, formatTime(have.expiry), sub, sub)
}

// liveRefreshOf returns the sub the journal says the live file's login is
// (a regular file the CLI wrote after the journal's last change), when
// that login's fingerprint is fp; "" otherwise.
func (m *Manager) liveRefreshOf(fp string) string {
	live, err := inspect(m.cfg.fs, m.live)
	if err != nil || live.Kind != kindFile || m.cfg.format.parse(live.Data).fingerprint != fp {
		return ""
	}
	owner, why := m.activeFor(live)
	if why != "" {
		return ""
	}
	return owner
}

// copiedLogin says that sub's slot holds the login other's slot holds, and
// what to do.
func copiedLogin(sub, other string) string {
	return fmt.Sprintf("slot %s holds the same login as %s's slot (a copy of it); a refresh through one would end the other: log in to %s's account again and capture it, or restore one of %s's backups (credslots backups %s)",
		sub, other, sub, sub, sub)
}

// captureRefusal refuses a capture that would record another sub's login
// as sub's. A login sub's sidecar already records is sub's (a rotation by
// copy makes the live file a copy of a slot; the original of a copy is its
// own). A refresh token is single-use, so a login another slot holds too
// (a file copied over this one by hand) is never recorded as sub's; nor,
// where the identity is not the refresh token (Codex: the account), is
// another login of the account another slot holds, since a heal files a
// login by its account; nor is the live file's login the journal says is
// another sub's refresh (copied into sub's slot by hand: nothing would then
// heal it into its own).
func (m *Manager) captureRefusal(sub string) error {
	c := m.readAt(m.slots[sub], credfile.Identity|credfile.Login)
	fp := c.fingerprint
	if fp == "" {
		return nil
	}
	if where := m.leasedLogin(c.login, sub); where != "" {
		return fmt.Errorf("credslots: slot %s holds %s (a copy of it); a refresh through one would end the other: log in to %s's account again and capture it: %w",
			sub, where, sub, ErrIdentityDrift)
	}
	if stored, _ := m.storedFingerprint(sub); stored == fp {
		return nil
	}
	for _, other := range m.subs {
		if other == sub {
			continue
		}
		o := m.readAt(m.slots[other], credfile.Identity|credfile.Login)
		switch {
		case c.login != "" && o.login == c.login:
			return fmt.Errorf("credslots: %s: %w", copiedLogin(sub, other), ErrIdentityDrift)
		case o.fingerprint == fp:
			return fmt.Errorf("credslots: slot %s holds a login of the account %s's slot holds (the same %s): a sub is one account, and a heal files a login by its account; log in to %s's own account and capture it: %w",
				sub, other, m.cfg.format.identityName(), sub, ErrIdentityDrift)
		}
	}
	if other := m.liveRefreshOf(fp); other != "" && other != sub {
		return fmt.Errorf("credslots: slot %s holds the live file's login, which the journal says is %s's refreshed login: log in to %s's account again and capture it, then heal the live file into %s (credslots heal %s): %w",
			sub, other, sub, other, other, ErrIdentityDrift)
	}
	return nil
}
