package credslots

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Format describes one CLI's credential file: where it lives by default, how
// to read the access token's expiry, which field identifies the login (its
// sha256 is the slot fingerprint), and when a document is blank (what a CLI
// writes after a failed refresh or a logout).
//
// The interface is sealed: the package provides ClaudeCode, GeminiCLI and
// CodexCLI, and the unexported parsing method keeps every reader inside the
// package, where it is fuzzed.
type Format interface {
	// Name is the short tool name: "claude", "gemini" or "codex".
	Name() string
	// DefaultDir is the creds dir relative to the user's home directory.
	DefaultDir() string
	// DefaultLiveName is the live credential file's name in the creds dir.
	DefaultLiveName() string
	// DefaultSlotTemplate is the slot template New uses with this format.
	DefaultSlotTemplate() string

	// expiryField names the expiry in reasons ("expiresAt").
	expiryField() string
	// parse reads a credential document. It never panics and never keeps
	// token material beyond the identity's hash.
	parse(data []byte) credential
	// identityName names the identity key in reasons ("refresh token").
	identityName() string
	// stableIdentity reports whether the identity key survives a token
	// refresh, so that a heal can check the live file's identity.
	stableIdentity() bool
	// cliLocks lists the locks the CLI takes around a token refresh, in its
	// order, for creds dir dir whose real path is real.
	cliLocks(dir, real string) []cliLock
	// needsRealDir reports whether cliLocks uses the real path.
	needsRealDir() bool
}

// credential is what the package knows about one credential document.
type credential struct {
	// problem says why the document cannot serve as a credential, in the
	// words of the heal reasons ("missing claudeAiOauth payload"); "" when
	// it has a readable expiry.
	problem string
	// expiry is the access token's expiry, UTC, when hasExpiry.
	expiry time.Time
	// expiryOK is set only by a parse that read the expiry, so that the
	// zero credential has none.
	expiryOK bool
	// fingerprint is the sha256 hex of the identity key; "" when absent.
	fingerprint string
	// blank names a blanked field ("claudeAiOauth.accessToken"); "" when none.
	blank string
}

func (c credential) hasExpiry() bool { return c.expiryOK }

// The supported formats.
var (
	// ClaudeCode reads Claude Code's ~/.claude/.credentials.json:
	// claudeAiOauth.expiresAt (Unix ms), identity claudeAiOauth.refreshToken.
	ClaudeCode Format = &jsonFormat{name: "claude", dir: ".claude", live: DefaultLiveName, field: "expiresAt",
		id: "refresh token", read: readClaude, locks: claudeLocks}
	// GeminiCLI reads Gemini CLI's ~/.gemini/oauth_creds.json:
	// expiry_date (Unix ms), identity refresh_token.
	GeminiCLI Format = &jsonFormat{name: "gemini", dir: ".gemini", live: "oauth_creds.json", field: "expiry_date",
		id: "refresh_token", stable: true, read: readGemini}
	// CodexCLI reads Codex CLI's ~/.codex/auth.json: the exp claim (Unix
	// seconds) of the JWT in tokens.access_token, decoded without verifying
	// its signature; identity tokens.account_id.
	CodexCLI Format = &jsonFormat{name: "codex", dir: ".codex", live: "auth.json", field: "tokens.access_token exp",
		id: "tokens.account_id", stable: true, read: readCodex, locks: codexLocks}
)

// Formats lists the supported formats, for lookup by Name.
func Formats() []Format { return []Format{ClaudeCode, GeminiCLI, CodexCLI} }

// jsonFormat is a credential format stored as one JSON object whose slots
// are named "<live name>.{sub}".
type jsonFormat struct {
	name, dir, live string
	field           string                           // the expiry, as reasons name it
	id              string                           // the identity key, as reasons name it
	stable          bool                             // the identity survives a refresh
	read            func(map[string]any) credential  // reads a decoded document
	locks           func(dir, real string) []cliLock // the CLI's refresh locks; nil for none
}

func (f *jsonFormat) Name() string                { return f.name }
func (f *jsonFormat) String() string              { return f.name }
func (f *jsonFormat) DefaultDir() string          { return f.dir }
func (f *jsonFormat) DefaultLiveName() string     { return f.live }
func (f *jsonFormat) DefaultSlotTemplate() string { return f.live + "." + subPlaceholder }
func (f *jsonFormat) expiryField() string         { return f.field }
func (f *jsonFormat) identityName() string        { return f.id }
func (f *jsonFormat) stableIdentity() bool        { return f.stable }
func (f *jsonFormat) needsRealDir() bool          { return f.name == "claude" }

func (f *jsonFormat) cliLocks(dir, real string) []cliLock {
	if f.locks == nil {
		return nil
	}
	return f.locks(dir, real)
}

// Claude Code's lock directories and their stale times, as its lock library
// takes them around a token refresh.
const (
	claudeRefreshLock  = ".oauth_refresh.lock"
	claudeStorageLock  = ".storage-write.lock"
	claudeRefreshStale = 10 * time.Second
	claudeStorageStale = 15 * time.Second
	codexAuthLock      = "auth.lock"
)

// claudeLocks: the refresh lock, the legacy lock beside the real creds dir,
// and the storage-write lock, in Claude Code's order.
func claudeLocks(dir, real string) []cliLock {
	return []cliLock{
		{path: filepath.Join(dir, claudeRefreshLock), stale: claudeRefreshStale},
		{path: real + lockSuffix, stale: claudeRefreshStale},
		{path: filepath.Join(dir, claudeStorageLock), stale: claudeStorageStale},
	}
}

// codexLocks: the flock Codex CLI takes before it commits auth.json.
func codexLocks(dir, _ string) []cliLock {
	return []cliLock{{path: filepath.Join(dir, codexAuthLock)}}
}

func (f *jsonFormat) parse(data []byte) credential {
	root, problem := decodeObject(data)
	if problem != "" {
		return credential{problem: problem}
	}
	c := f.read(root)
	c.expiryOK = c.problem == ""
	return c
}

func readClaude(root map[string]any) credential {
	var c credential
	oauth, ok := root["claudeAiOauth"].(map[string]any)
	if !ok {
		c.problem = "missing claudeAiOauth payload"
		return c
	}
	c.fingerprint = fingerprintOf(oauth["refreshToken"])
	c.blank = blankField("claudeAiOauth.", oauth, "accessToken", "refreshToken")
	c.expiry, c.problem = msExpiry(oauth["expiresAt"], "expiresAt")
	return c
}

func readGemini(root map[string]any) credential {
	var c credential
	c.fingerprint = fingerprintOf(root["refresh_token"])
	c.blank = blankField("", root, "access_token")
	c.expiry, c.problem = msExpiry(root["expiry_date"], "expiry_date")
	return c
}

func readCodex(root map[string]any) credential {
	var c credential
	tokens, ok := root["tokens"].(map[string]any)
	if !ok {
		c.problem = "missing tokens payload"
		return c
	}
	c.fingerprint = fingerprintOf(tokens["account_id"])
	c.blank = blankField("tokens.", tokens, "access_token")
	jwt, ok := tokens["access_token"].(string)
	if !ok || jwt == "" {
		c.problem = "missing tokens.access_token"
		return c
	}
	claims, ok := jwtClaims(jwt)
	if !ok {
		c.problem = "tokens.access_token exp unparseable"
		return c
	}
	num, ok := claims["exp"].(json.Number)
	if !ok {
		c.problem = "missing tokens.access_token exp"
		return c
	}
	exp, ok := decimalTime(string(num), time.Second)
	if !ok {
		c.problem = "tokens.access_token exp unparseable"
		return c
	}
	c.expiry = exp
	return c
}

// decodeObject parses data as JSON, keeping numbers exact. problem is the
// heal-reason wording when it is not JSON; a document whose root is not an
// object yields a nil map, in which every field is missing.
func decodeObject(data []byte) (map[string]any, string) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, "unreadable or malformed JSON: " + jsonDetail(err)
	}
	if len(bytes.TrimSpace(data[dec.InputOffset():])) != 0 {
		return nil, "unreadable or malformed JSON: trailing data after the document"
	}
	obj, _ := v.(map[string]any)
	return obj, ""
}

// jsonDetail describes a decoding error without quoting the document, not
// even the one offending character a syntax error names.
func jsonDetail(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "syntax error at offset " + strconv.FormatInt(se.Offset, 10)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of JSON input"
	}
	return "not a valid JSON document"
}

// msExpiry reads a JSON number of Unix milliseconds. problem is "missing
// <field>" when v is not a number and "<field> unparseable" when it is out
// of the years 1 to 9999.
func msExpiry(v any, field string) (time.Time, string) {
	num, ok := v.(json.Number)
	if !ok {
		return time.Time{}, "missing " + field
	}
	exp, ok := decimalTime(string(num), time.Millisecond)
	if !ok {
		return time.Time{}, field + " unparseable"
	}
	return exp, ""
}

// fingerprintOf hashes an identity value that is a non-empty string.
func fingerprintOf(v any) string {
	s, ok := v.(string)
	if !ok || s == "" {
		return ""
	}
	return hashBytes([]byte(s))
}

// blankField returns the first of keys that is present in obj but holds no
// usable token (an empty string or null), prefixed for reasons.
func blankField(prefix string, obj map[string]any, keys ...string) string {
	for _, k := range keys {
		v, present := obj[k]
		if !present {
			continue
		}
		if s, ok := v.(string); !ok || s == "" {
			if ok || v == nil {
				return prefix + k
			}
		}
	}
	return ""
}

// jwtClaims decodes a JWT's payload segment without verifying anything.
func jwtClaims(jwt string) (map[string]any, bool) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 || parts[1] == "" {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, false
	}
	claims, problem := decodeObject(raw)
	return claims, problem == ""
}
