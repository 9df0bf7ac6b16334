package credslots

// This file carries Claude Code's account-independent state (MCP server
// logins, plugin secrets, ...) from the live file into the slot a switch
// turns to, so that a switch never rolls it back. The member-level work is
// internal/credfile's CarryState.

import "github.com/gptme/credslots/internal/credfile"

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
	return credfile.CarryState(slot, live, accountKey)
}
