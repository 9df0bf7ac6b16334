package credfile

import (
	"bytes"

	"github.com/gptme/credslots/internal/jsonscan"
)

// Shape reports whether data is a credential document of the format named
// format ("claude", "gemini", "codex") at all, whatever its expiry or
// freshness, or why not: a JSON object holding the format's login payload.
// An expired or blanked login is still a credential; a settings file, a
// list, or a document that is not JSON is not. Any other format name
// accepts every document.
func Shape(format string, data []byte) (bool, string) {
	root, problem := jsonscan.Document(data)
	if problem != "" {
		root = nil
	}
	return RootShape(format, root)
}

// RootShape is Shape for a document the caller has scanned already: root
// is what jsonscan.Document accepted, trimmed, or nil for data that is not
// JSON.
func RootShape(format string, root []byte) (bool, string) {
	if root == nil {
		return false, "not a JSON document"
	}
	if len(root) == 0 || root[0] != '{' {
		return false, "not a JSON object"
	}
	isObject := func(raw []byte) bool { return len(raw) > 0 && raw[0] == '{' }
	isString := func(raw []byte) bool { _, ok := jsonscan.String(raw); return ok }
	switch format {
	case "claude":
		if isObject(jsonscan.Fields(root, "claudeAiOauth")[0]) {
			return true, ""
		}
		return false, "no claudeAiOauth object"
	case "gemini":
		v := jsonscan.Fields(root, "access_token", "refresh_token")
		if isString(v[0]) || isString(v[1]) {
			return true, ""
		}
		return false, "no access_token or refresh_token"
	case "codex":
		v := jsonscan.Fields(root, "tokens", "OPENAI_API_KEY")
		if isObject(v[0]) || isString(v[1]) {
			return true, ""
		}
		return false, "no tokens object"
	}
	return true, ""
}

// CarryState returns slot's content with every top-level member of live
// except the account's own (named account) set to live's value: the slot's
// account bytes (its identity and expiry) stay as they are, members only
// the slot has are kept, and unknown members are carried too. ok is false,
// and the slot is to be left as it is, when either document is not a
// readable JSON object or nothing would change.
func CarryState(slot, live []byte, account string) ([]byte, bool) {
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
		if m.Name == account {
			out = append(out, m)
		}
	}
	for _, m := range liveMembers {
		inLive[m.Name] = true
		if m.Name != account {
			out = append(out, m)
		}
	}
	for _, m := range slotMembers {
		if m.Name != account && !inLive[m.Name] {
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

// MaxClaudeJSON bounds a read of Claude Code's .claude.json, which also
// holds every project's history and can be larger than a credential.
const MaxClaudeJSON = 64 << 20

// AccountMember is .claude.json's per-account member.
const AccountMember = "oauthAccount"

// AccountIn returns the raw oauthAccount object of a .claude.json
// document; nil when the document is not JSON or shows no account object.
func AccountIn(data []byte) []byte {
	doc, problem := jsonscan.Document(data)
	if problem != "" {
		return nil
	}
	v := jsonscan.Fields(doc, AccountMember)[0]
	if len(v) == 0 || v[0] != '{' {
		return nil
	}
	return v
}
