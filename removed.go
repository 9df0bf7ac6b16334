package credslots

import (
	"bytes"
	"path/filepath"
)

// removedSidecar is where [Manager.Remove] keeps a removed sub's sidecar,
// so that a restore of that sub's own login remembers its account again.
func (m *Manager) removedSidecar(sub string) string {
	return filepath.Join(m.private, "removed."+sub+".fingerprint.json")
}

// keepRemovedSidecar copies sub's sidecar, when it has one, to
// removedSidecar before the sidecar is removed.
func (m *Manager) keepRemovedSidecar(sub string) error {
	data, err := m.cfg.fs.ReadFile(m.prints[sub])
	if err != nil {
		return nil // no sidecar, or an unreadable one: nothing to remember
	}
	if err := m.ensurePrivateDir(m.private); err != nil {
		return err
	}
	return m.writeFile(m.removedSidecar(sub), data)
}

// sidecarAfterRemove is sub's sidecar as a capture reads it: when sub has
// none and the sidecar kept at its removal is of the login sub's slot holds
// now, the account that one remembers, so that the capture keeps it.
func (m *Manager) sidecarAfterRemove(sub string) sidecarRead {
	side := m.readSidecar(sub)
	if side.err != nil || side.fp != "" {
		return side
	}
	data, err := m.cfg.fs.ReadFile(m.removedSidecar(sub))
	if err != nil {
		return side
	}
	if fp, ok := parseSidecar(data); ok && fp == m.currentFingerprint(sub) {
		if acct := sidecarAccount(data); acct != nil && !bytes.Equal(acct, []byte("null")) {
			side.account = acct
		}
	}
	return side
}
