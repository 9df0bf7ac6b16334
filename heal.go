package credslots

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// healHookReason is passed to the on-switch hook after a heal.
const healHookReason = "auto-heal drift (live cred resynced to slot)"

// HealDriftTo recovers from a CLI token refresh that replaced the live symlink
// with a regular file, stranding every slot at the old token: it copies the
// live bytes into sub's slot and puts the symlink back. The caller decides
// which sub was active before the refresh. Checks, in order:
//
//  1. sub is configured, else ErrUnknownSubscription;
//  2. the live content matches no slot, else ErrNoDrift ("no drift");
//  3. the live path is not a symlink, else ErrUnhealable;
//  4. the live path exists, else ErrUnhealable ("live file missing");
//  5. the live bytes, read once, are a credential of the Manager's format with
//     a readable expiry (else ErrUnhealable), fresh beyond the grace period
//     (else ErrNotFresh), and not blanked by a failed refresh or logout (else
//     ErrUnhealable naming the blank field);
//  6. unless Force, the lock guard reports no busy-signal, else ErrDeferred.
//
// Then the slot's previous content is kept as "<slot path>.prev", the
// validated bytes are written to the slot exactly as read (never
// re-serialized), and the live file is replaced by the relative symlink, but
// only while it still holds those bytes: if the CLI refreshed again
// meanwhile, the newer live file stays and the error wraps ErrLiveChanged.
// Finally the fingerprint is captured (a failure is logged) and the
// on-switch hook runs with "auto-heal drift (live cred resynced to slot)".
func (m *Manager) HealDriftTo(sub string, opts ...SwitchOption) (SwitchResult, error) {
	sc := applySwitchOptions(opts)
	if !m.knows(sub) {
		return m.refuse(ErrUnknownSubscription, sub, m.unknownSub(sub), nil)
	}

	release, err := m.beginMutation()
	if err != nil {
		return m.fail(sub, err)
	}
	defer release()

	drift, live, err := m.liveDrift()
	if err != nil {
		return m.fail(sub, err)
	}
	switch {
	case drift == nil || !drift.Drift:
		return m.refuse(ErrNoDrift, sub, "no drift", nil)
	case live.kind == kindSymlink || live.kind == kindBrokenSymlink:
		return m.refuse(ErrUnhealable, sub, "live is a symlink — drift implies slot rewrite, not OAuth refresh", nil)
	case live.kind != kindFile:
		return m.refuse(ErrUnhealable, sub, "live file missing", nil)
	}
	cred := m.cfg.format.parse(live.data)
	fresh := false
	if cred.hasExpiry() {
		fresh, _ = expiryVerdict(cred.expiry, m.cfg.grace, m.cfg.now())
	}
	switch {
	case cred.problem != "":
		return m.refuse(ErrUnhealable, sub, "live file "+cred.problem, nil)
	case !fresh:
		return m.refuse(ErrNotFresh, sub, fmt.Sprintf("live token expired or in grace (%s)", formatTime(cred.expiry)), nil)
	case cred.blank != "":
		why := fmt.Sprintf("live credential is blank: %s is empty (written after a failed refresh or a logout)", cred.blank)
		return m.refuse(ErrUnhealable, sub, why, nil)
	}
	if locks := m.busy(sc); len(locks) > 0 {
		why := fmt.Sprintf("deferred: active lock(s) %s; would heal to %s", strings.Join(locks, ", "), sub)
		return m.refuse(ErrDeferred, sub, why, locks)
	}

	slot := m.slots[sub]
	prev, err := m.cfg.fs.ReadFile(slot)
	switch {
	case err == nil && !bytes.Equal(prev, live.data):
		if err := writeFileAtomic(m.cfg.fs, slot+prevSuffix, prev); err != nil {
			return m.fail(sub, err)
		}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return m.fail(sub, fmt.Errorf("credslots: read slot %s before backup: %w", slot, err))
	}
	if err := writeFileAtomic(m.cfg.fs, slot, live.data); err != nil {
		return m.fail(sub, err)
	}
	if err := swapInSymlink(m.cfg.fs, m.live, m.symlinkTarget(sub), live); err != nil {
		return m.fail(sub, err)
	}
	return m.changed(sub, healHookReason,
		fmt.Sprintf("healed: synced live → %s, symlink restored", filepath.Base(slot)))
}
