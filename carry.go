package credslots

// This file carries Claude Code's account-independent state (MCP server
// logins, plugin secrets, ...) from the live file into the slot a switch
// turns to, so that a switch never rolls it back.

import (
	"bytes"

	"github.com/gptme/credslots/internal/jsonscan"
)

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
	liveDoc, problem := jsonscan.Document(live)
	if problem != "" {
		return nil, false
	}
	slotDoc, problem := jsonscan.Document(slot)
	if problem != "" {
		return nil, false
	}
	liveMembers, ok := jsonscan.Members(liveDoc)
	if !ok {
		return nil, false
	}
	slotMembers, ok := jsonscan.Members(slotDoc)
	if !ok {
		return nil, false
	}
	var out []jsonscan.Member
	inLive := map[string]bool{}
	for _, m := range slotMembers {
		if m.Name == accountKey {
			out = append(out, m)
		}
	}
	for _, m := range liveMembers {
		inLive[m.Name] = true
		if m.Name != accountKey {
			out = append(out, m)
		}
	}
	for _, m := range slotMembers {
		if m.Name != accountKey && !inLive[m.Name] {
			out = append(out, m)
		}
	}
	if sameMembers(out, slotMembers) {
		return nil, false
	}
	return jsonscan.WriteObject(out), true
}

// sameMembers reports whether two member lists hold the same names with the
// same value bytes, in any order.
func sameMembers(a, b []jsonscan.Member) bool {
	if len(a) != len(b) {
		return false
	}
	values := make(map[string][]byte, len(b))
	for _, m := range b {
		values[m.Name] = m.Value
	}
	for _, m := range a {
		v, ok := values[m.Name]
		if !ok || !bytes.Equal(v, m.Value) {
			return false
		}
	}
	return true
}
