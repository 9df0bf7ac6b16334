package credslots

import "fmt"

// newLoginShown tells, for a drifted regular live file, whether it is a
// login to a new account rather than a refresh: .claude.json shows an
// account that no configured slot remembers, and the sub the journal says
// was live remembers another. It returns what .claude.json shows, for
// people; "" when it is not known to be a new login. A heal of such a file
// refuses (ErrNewLogin), so status and a switch refusal name the command
// that files it instead.
func (m *Manager) newLoginShown() string {
	shown := m.shownAccount()
	if shown == nil || m.accountOwner(shown, "") != "" {
		return ""
	}
	last, ok := m.LastActive()
	if !ok {
		return ""
	}
	if _, mine, err := m.storedSidecar(last); err != nil || mine == nil || sameAccount(shown, mine) {
		return ""
	}
	return accountLabel(shown)
}

// newLoginAdvice is the problem, or the refusal's advice, for a live file
// holding a new login: file it under a sub of its own.
func newLoginAdvice(shown string) string {
	return fmt.Sprintf("the live file holds a new login (.claude.json shows %s, which no slot remembers): file it under a sub of its own (credslots add NAME)", shown)
}

// newIdentityLogin reports whether the drifted live file data holds, for a
// format whose identity survives a refresh (Codex CLI's account), a login
// of an identity no configured slot holds or had captured: a new login,
// which no heal takes, not a refresh.
func (m *Manager) newIdentityLogin(data []byte) bool {
	if !m.cfg.format.stableIdentity() {
		return false
	}
	fp := m.cfg.format.parse(data).fingerprint
	return fp != "" && m.storedOwner(fp, "") == "" && m.slotWithIdentity(fp, "") == ""
}

// newIdentityAdvice is newLoginAdvice for a login newIdentityLogin finds.
func (m *Manager) newIdentityAdvice() string {
	return fmt.Sprintf("the live file holds a new login (its %s is no slot's): file it under a sub of its own (credslots add NAME)", m.cfg.format.identityName())
}
