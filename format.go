package credslots

import (
	"os"
	"path/filepath"
	"time"

	"github.com/gptme/credslots/internal/credfile"
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
	// LoginWritesThrough reports whether the CLI's login writes through
	// the live symlink, over the slot it points at (Codex CLI, Gemini
	// CLI), where Claude Code's replaces the link with a regular file: a
	// further login is kept only once the link is gone.
	LoginWritesThrough() bool

	// expiryField names the expiry in reasons ("expiresAt").
	expiryField() string
	// parse reads a credential document. It never panics and never keeps
	// token material beyond the identity's hash.
	parse(data []byte) credential
	// parseFor is parse computing only the fields want names (see
	// internal/credfile): a check that needs the expiry alone hashes
	// nothing.
	parseFor(data []byte, want credfile.Want) credential
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
	// login is the sha256 hex of the refresh token, which one login alone
	// may hold (see credfile.Credential.Login); "" when absent.
	login string
	// blank names a blanked field ("claudeAiOauth.accessToken"); "" when none.
	blank string
}

func (c credential) hasExpiry() bool { return c.expiryOK }

// The supported formats.
var (
	// ClaudeCode reads Claude Code's ~/.claude/.credentials.json:
	// claudeAiOauth.expiresAt (Unix ms), identity claudeAiOauth.refreshToken.
	ClaudeCode Format = &jsonFormat{name: "claude", dir: ".claude", live: DefaultLiveName, field: "expiresAt",
		id: "refresh token", read: credfile.Claude, locks: claudeLocks}
	// GeminiCLI reads Gemini CLI's ~/.gemini/oauth_creds.json:
	// expiry_date (Unix ms), identity refresh_token.
	GeminiCLI Format = &jsonFormat{name: "gemini", dir: ".gemini", live: "oauth_creds.json", field: "expiry_date",
		id: "refresh_token", stable: true, read: credfile.Gemini}
	// CodexCLI reads Codex CLI's ~/.codex/auth.json: the exp claim (Unix
	// seconds) of the JWT in tokens.access_token, decoded without verifying
	// its signature; identity tokens.account_id.
	CodexCLI Format = &jsonFormat{name: "codex", dir: ".codex", live: "auth.json", field: "tokens.access_token exp",
		id: "tokens.account_id", stable: true, read: credfile.Codex, locks: codexLocks}
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
	read            *credfile.Format                 // reads a document
	locks           func(dir, real string) []cliLock // the CLI's refresh locks; nil for none
}

func (f *jsonFormat) Name() string                { return f.name }
func (f *jsonFormat) String() string              { return f.name }
func (f *jsonFormat) DefaultDir() string          { return f.cliDir(os.LookupEnv, os.UserHomeDir) }
func (f *jsonFormat) DefaultLiveName() string     { return f.live }
func (f *jsonFormat) DefaultSlotTemplate() string { return f.live + "." + subPlaceholder }
func (f *jsonFormat) expiryField() string         { return f.field }
func (f *jsonFormat) identityName() string        { return f.id }
func (f *jsonFormat) stableIdentity() bool        { return f.stable }
func (f *jsonFormat) needsRealDir() bool          { return f.name == "claude" }
func (f *jsonFormat) carriesState() bool          { return f.name == "claude" }
func (f *jsonFormat) LoginWritesThrough() bool    { return f.name != "claude" }

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

func (f *jsonFormat) parse(data []byte) credential { return f.parseFor(data, credfile.All) }

func (f *jsonFormat) parseFor(data []byte, want credfile.Want) credential {
	c := credfile.Parse(f.read, data, want)
	return credential{problem: c.Problem, expiry: c.Expiry, expiryOK: c.ExpiryOK, fingerprint: c.Fingerprint, login: c.Login, blank: c.Blank}
}
