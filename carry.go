package credslots

// This file carries Claude Code's account-independent state (MCP server
// logins, plugin secrets, ...) from the live file into the slot a switch
// turns to, so that a switch never rolls it back.

import "bytes"

// accountKey is the one top-level key of a Claude Code credential file that
// belongs to the account; every other key follows the live path.
const accountKey = "claudeAiOauth"

// carriedSlot returns the target slot's content with every top-level key of
// live except the account's own set to live's value: the slot's
// claudeAiOauth bytes (its identity and expiry) stay as they are, keys only
// the slot has are kept, and unknown keys are carried too. ok is false, and
// the slot is to be left as it is, when either document is not a readable
// JSON object or nothing would change.
func carriedSlot(slot, live []byte) ([]byte, bool) {
	liveDoc, problem := validDocument(live)
	if problem != "" {
		return nil, false
	}
	slotDoc, problem := validDocument(slot)
	if problem != "" {
		return nil, false
	}
	liveMembers, ok := objectMembers(liveDoc)
	if !ok {
		return nil, false
	}
	slotMembers, ok := objectMembers(slotDoc)
	if !ok {
		return nil, false
	}
	var out []member
	inLive := map[string]bool{}
	for _, m := range slotMembers {
		if m.name == accountKey {
			out = append(out, m)
		}
	}
	for _, m := range liveMembers {
		inLive[m.name] = true
		if m.name != accountKey {
			out = append(out, m)
		}
	}
	for _, m := range slotMembers {
		if m.name != accountKey && !inLive[m.name] {
			out = append(out, m)
		}
	}
	if sameMembers(out, slotMembers) {
		return nil, false
	}
	return writeObject(out), true
}

// sameMembers reports whether two member lists hold the same names with the
// same value bytes, in any order.
func sameMembers(a, b []member) bool {
	if len(a) != len(b) {
		return false
	}
	values := make(map[string][]byte, len(b))
	for _, m := range b {
		values[m.name] = m.value
	}
	for _, m := range a {
		v, ok := values[m.name]
		if !ok || !bytes.Equal(v, m.value) {
			return false
		}
	}
	return true
}
