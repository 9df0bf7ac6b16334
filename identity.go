package credslots

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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
)

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
	data, err := osFS{}.ReadFile(path)
	if err != nil {
		return "", false
	}
	fp := ClaudeCode.parse(data).fingerprint
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
func (m *Manager) storedFingerprint(sub string) (string, error) {
	fp, _, err := m.storedSidecar(sub)
	return fp, err
}

// storedSidecar reads sub's sidecar: the fingerprint and the remembered
// oauthAccount (raw JSON; nil when none).
func (m *Manager) storedSidecar(sub string) (string, []byte, error) {
	data, err := m.cfg.fs.ReadFile(m.prints[sub])
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("credslots: read fingerprint of %q: %w", sub, err)
	}
	fp, _ := parseSidecar(data)
	return fp, sidecarAccount(data), nil
}

// parseSidecar reads a sidecar document's fingerprint.
func parseSidecar(data []byte) (string, bool) {
	root, problem := validDocument(data)
	if problem != "" {
		return "", false
	}
	fp, ok := jsonString(objectFields(root, "refresh_token_sha256")[0])
	return fp, ok && fp != ""
}

// currentFingerprint reads sub's slot and returns its identity fingerprint.
func (m *Manager) currentFingerprint(sub string) string {
	_, c, err := m.readCredential(m.slots[sub])
	if err != nil {
		return ""
	}
	return c.fingerprint
}

// CaptureSlotFingerprint records the identity of sub's slot in its sidecar
// (mode 0600, written atomically) and returns the fingerprint. When the slot
// is missing or has no identity it returns "", nil and writes nothing. An
// unknown sub returns an error wrapping [ErrUnknownSubscription]; waiting too
// long for the manager's lock returns [ErrLockTimeout].
//
// Call it after a fresh login establishes a slot's identity; [Manager.SwitchTo] and
// [Manager.HealDriftTo] call it themselves after a successful change.
func (m *Manager) CaptureSlotFingerprint(sub string) (string, error) {
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
	mu, err := m.beginOwnMutation() // only the package's files change
	if err != nil {
		return "", err
	}
	defer mu.end()
	m.sweepIfDue()
	fp, err := m.captureLocked(sub, true, true)
	if err == nil && fp != "" {
		err = m.record(JournalEntry{Time: m.cfg.now(), Op: opCapture, Phase: phaseDone, Sub: sub, Reason: "fingerprint captured"})
	}
	return fp, err
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
	if fp == "" {
		fp = m.currentFingerprint(sub)
	}
	if fp == "" {
		return "", nil
	}
	stored, storedAccount, serr := m.storedSidecar(sub)
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
	if acct == nil && stored == fp {
		acct = storedAccount // the same login keeps its account
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
	if !m.knows(sub) {
		return IdentityDriftInfo{Sub: sub}, fmt.Errorf("credslots: %s: %w", m.unknownSub(sub), ErrUnknownSubscription)
	}
	return m.identityVerdict(sub, m.currentFingerprint(sub))
}

// identityVerdict applies the matrix to a current fingerprint. It fails only
// when the sidecar exists but cannot be read.
func (m *Manager) identityVerdict(sub, current string) (IdentityDriftInfo, error) {
	stored, err := m.storedFingerprint(sub)
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
	case stored != current:
		info.Drift, info.Reason = true, fmt.Sprintf(reasonChanged, m.cfg.format.identityName())
	default:
		info.Reason = reasonFingerprOK
	}
	return info, nil
}
