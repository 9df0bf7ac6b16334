package credslots

import "fmt"

// DriftInfo is the result of DetectLiveSlotDrift.
type DriftInfo struct {
	// Drift is true when the live content matches no slot, or the live
	// symlink is broken.
	Drift bool `json:"drift"`
	// MatchingSlot is the first configured sub whose slot has the live
	// content; "" when none.
	MatchingSlot string `json:"matching_slot"`
	// LiveHash is the sha256 hex of the live content; "" when the live
	// symlink is broken.
	LiveHash string `json:"live_hash"`
	// SlotHashes maps each sub whose slot exists and is readable to the
	// sha256 hex of its content.
	SlotHashes map[string]string `json:"slot_hashes"`
}

// DetectLiveSlotDrift compares the live credential's content (following the
// symlink) with every slot. It returns nil, nil when there is no live path at
// all, Drift true with an empty LiveHash when the live symlink is broken, and
// an error when the live path exists but cannot be read (a directory, no
// permission). It reads each file once and changes nothing.
func (m *Manager) DetectLiveSlotDrift() (*DriftInfo, error) {
	info, _, err := m.liveDrift()
	return info, err
}

// liveDrift is DetectLiveSlotDrift that also returns what it read at the live
// path, so that callers decide and act on the same bytes.
func (m *Manager) liveDrift() (*DriftInfo, entry, error) {
	live, err := inspect(m.cfg.fs, m.live)
	if err != nil {
		return nil, live, fmt.Errorf("credslots: read live path %s: %w", m.live, err)
	}
	if live.kind == kindMissing {
		return nil, live, nil
	}
	info := &DriftInfo{LiveHash: live.hash, SlotHashes: m.slotHashes()}
	if live.hash != "" {
		for _, sub := range m.subs {
			if h, ok := info.SlotHashes[sub]; ok && h == live.hash {
				info.MatchingSlot = sub
				break
			}
		}
	}
	info.Drift = info.MatchingSlot == ""
	return info, live, nil
}

// slotWithHash returns the first configured sub whose slot has content with
// the given hash, reading slots in order only until it finds one.
func (m *Manager) slotWithHash(hash string) (string, bool) {
	for _, sub := range m.subs {
		if data, err := m.cfg.fs.ReadFile(m.slots[sub]); err == nil && hashBytes(data) == hash {
			return sub, true
		}
	}
	return "", false
}

// slotHashes hashes every existing, readable slot.
func (m *Manager) slotHashes() map[string]string {
	hashes := make(map[string]string, len(m.subs))
	for _, sub := range m.subs {
		if data, err := m.cfg.fs.ReadFile(m.slots[sub]); err == nil {
			hashes[sub] = hashBytes(data)
		}
	}
	return hashes
}
