package credslots

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gptme/credslots/internal/jsonscan"
)

// Format describes one CLI's credential file: where it lives by default, how
// to read the access token's expiry, which field identifies the login (its
// sha256 is the slot fingerprint), and when a document is blank (what a CLI
// writes after a failed refresh or a logout).
//
// The interface is sealed: the package provides [ClaudeCode], [GeminiCLI] and
// [CodexCLI], and the unexported parsing method keeps every reader inside the
// package, where it is fuzzed.
type Format interface {
	// Name is the short tool name: "claude", "gemini" or "codex".
	Name() string
	// DefaultDir is the creds dir the CLI itself uses, found the way the
	// CLI finds it: for Claude Code $CLAUDE_SECURESTORAGE_CONFIG_DIR, else
	// $CLAUDE_CONFIG_DIR, else ~/.claude; for Codex CLI $CODEX_HOME, else
	// ~/.codex; for Gemini CLI $GEMINI_CLI_HOME/.gemini, else ~/.gemini.
	// It is relative (".claude") only when no variable is set and the home
	// directory is unknown.
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
	// carriesState reports whether the file holds account-independent
	// state that a switch carries into the target slot.
	carriesState() bool
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
	// doc is the document, trimmed, when it is JSON; nil when it is not.
	doc []byte
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
	read            func(root []byte) credential     // reads a validated document
	locks           func(dir, real string) []cliLock // the CLI's refresh locks; nil for none
}

func (f *jsonFormat) Name() string                { return f.name }
func (f *jsonFormat) String() string              { return f.name }
func (f *jsonFormat) DefaultDir() string          { return f.cliDir(os.Getenv, os.UserHomeDir) }
func (f *jsonFormat) DefaultLiveName() string     { return f.live }
func (f *jsonFormat) DefaultSlotTemplate() string { return f.live + "." + subPlaceholder }
func (f *jsonFormat) expiryField() string         { return f.field }
func (f *jsonFormat) identityName() string        { return f.id }
func (f *jsonFormat) stableIdentity() bool        { return f.stable }
func (f *jsonFormat) needsRealDir() bool          { return f.name == "claude" }
func (f *jsonFormat) carriesState() bool          { return f.name == "claude" }

func (f *jsonFormat) cliLocks(dir, real string) []cliLock {
	if f.locks == nil {
		return nil
	}
	return f.locks(dir, real)
}

// Claude Code's lock directories and their stale times, as its lock library
// takes them around a token refresh: for each, the longest stale time of
// the supported range (2.1.197 to 2.1.332, traced; see interop/README.md).
const (
	claudeRefreshLock = ".oauth_refresh.lock"
	claudeStorageLock = ".storage-write.lock"
	// claudeRefreshStale covers the refresh and legacy locks: 10 s in
	// 2.1.197, 60 s in 2.1.332.
	claudeRefreshStale = 60 * time.Second
	// claudeStorageStale is the storage-write lock's, 15 s throughout.
	claudeStorageStale = 15 * time.Second
	// claudeConfigStale is the .claude.json lock's: proper-lockfile's
	// default, 10 s throughout.
	claudeConfigStale = 10 * time.Second
	codexAuthLock     = "auth.lock"
)

// claudeLocks: the refresh lock, the legacy lock beside the real creds dir,
// and the storage-write lock, in Claude Code's order. The refresh lock's
// owner record (2.1.332) speaks for the refresh and legacy locks.
func claudeLocks(dir, real string) []cliLock {
	refresh := filepath.Join(dir, claudeRefreshLock)
	owner := ownerPathFor(refresh)
	return []cliLock{
		{path: refresh, stale: claudeRefreshStale, name: "Claude Code's refresh lock", owner: owner, writesOwner: true},
		{path: real + lockSuffix, stale: claudeRefreshStale, name: "Claude Code's legacy refresh lock", owner: owner, legacy: true},
		{path: filepath.Join(dir, claudeStorageLock), stale: claudeStorageStale, name: "Claude Code's storage-write lock"},
	}
}

// codexLocks: the flock Codex CLI takes before it commits auth.json.
func codexLocks(dir, _ string) []cliLock {
	return []cliLock{{path: filepath.Join(dir, codexAuthLock), name: "Codex CLI's auth lock"}}
}

func (f *jsonFormat) parse(data []byte) credential {
	root, problem := jsonscan.Document(data)
	if problem != "" {
		return credential{problem: problem}
	}
	c := f.read(root)
	c.expiryOK = c.problem == ""
	c.doc = root
	return c
}

// The readers take a document json.Valid accepted, trimmed; a root that is
// not an object has every field missing.

func readClaude(root []byte) credential {
	var c credential
	oauth := jsonscan.Fields(root, "claudeAiOauth")[0]
	if len(oauth) == 0 || oauth[0] != '{' {
		c.problem = "missing claudeAiOauth payload"
		return c
	}
	v := jsonscan.Fields(oauth, "accessToken", "refreshToken", "expiresAt")
	c.fingerprint = fingerprintOf(v[1])
	c.blank = blankField("claudeAiOauth.", []string{"accessToken", "refreshToken"}, v[0], v[1])
	c.expiry, c.problem = msExpiry(v[2], "expiresAt")
	return c
}

func readGemini(root []byte) credential {
	var c credential
	v := jsonscan.Fields(root, "access_token", "refresh_token", "expiry_date")
	c.fingerprint = fingerprintOf(v[1])
	c.blank = blankField("", []string{"access_token"}, v[0])
	c.expiry, c.problem = msExpiry(v[2], "expiry_date")
	return c
}

func readCodex(root []byte) credential {
	var c credential
	tokens := jsonscan.Fields(root, "tokens")[0]
	if len(tokens) == 0 || tokens[0] != '{' {
		c.problem = "missing tokens payload"
		return c
	}
	v := jsonscan.Fields(tokens, "access_token", "account_id")
	c.fingerprint = fingerprintOf(v[1])
	c.blank = blankField("tokens.", []string{"access_token"}, v[0])
	jwt, ok := jsonscan.String(v[0])
	if !ok || jwt == "" {
		c.problem = "missing tokens.access_token"
		return c
	}
	claims, ok := jwtClaims(jwt)
	if !ok {
		c.problem = "tokens.access_token exp unparseable"
		return c
	}
	num, ok := jsonscan.Number(jsonscan.Fields(claims, "exp")[0])
	if !ok {
		c.problem = "missing tokens.access_token exp"
		return c
	}
	exp, ok := jsonscan.DecimalTime(num, time.Second)
	if !ok {
		c.problem = "tokens.access_token exp unparseable"
		return c
	}
	c.expiry = exp
	return c
}

// msExpiry reads a raw JSON number of Unix milliseconds. problem is "missing
// <field>" when raw is not a number and "<field> unparseable" when it is
// out of the years 1 to 9999.
func msExpiry(raw []byte, field string) (time.Time, string) {
	num, ok := jsonscan.Number(raw)
	if !ok {
		return time.Time{}, "missing " + field
	}
	exp, ok := jsonscan.DecimalTime(num, time.Millisecond)
	if !ok {
		return time.Time{}, field + " unparseable"
	}
	return exp, ""
}

// fingerprintOf hashes a raw identity value that is a non-empty string.
func fingerprintOf(raw []byte) string {
	s, ok := jsonscan.String(raw)
	if !ok || s == "" {
		return ""
	}
	return hashBytes([]byte(s))
}

// blankField returns the first of names whose raw value is present but
// holds no usable token (an empty string or null), prefixed for reasons.
func blankField(prefix string, names []string, raws ...[]byte) string {
	for n, raw := range raws {
		if raw == nil {
			continue
		}
		if s, ok := jsonscan.String(raw); ok && s == "" || string(raw) == "null" {
			return prefix + names[n]
		}
	}
	return ""
}

// jwtClaims decodes a JWT's payload segment without verifying anything and
// returns it when it is a JSON document.
func jwtClaims(jwt string) ([]byte, bool) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 || parts[1] == "" {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, false
	}
	claims, problem := jsonscan.Document(raw)
	return claims, problem == ""
}
