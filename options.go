package credslots

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gptme/credslots/internal/disk"
)

// Defaults used by New when the corresponding option is not given.
const (
	// DefaultLiveName is the file name of the live credential path in the creds dir.
	DefaultLiveName = ".credentials.json"
	// DefaultSlotTemplate names a slot file relative to the creds dir.
	DefaultSlotTemplate = ".credentials.json.{sub}"
	// DefaultFingerprintTemplate names a slot's identity sidecar relative to the creds dir.
	DefaultFingerprintTemplate = ".credentials.json.{sub}.fingerprint.json"
	// DefaultGrace is how long before its expiry a token already counts as stale.
	DefaultGrace = 5 * time.Minute
	// DefaultLockTimeout is how long a mutation waits for the manager's file lock.
	DefaultLockTimeout = 10 * time.Second
)

// subPlaceholder is the marker every slot and fingerprint template must contain.
const subPlaceholder = "{sub}"

// Option configures a Manager. Options are applied in order by New; the
// resulting configuration is validated once, after all options ran.
type Option func(*config)

// config is what the options build. New validates it and derives every path.
type config struct {
	credsDir            string
	subs                []string
	slotTemplate        string
	liveName            string
	fingerprintTemplate string
	grace               time.Duration
	lockGuard           func() []string
	onSwitch            func(sub, reason string)
	onChange            func(Change)
	logger              *slog.Logger
	now                 func() time.Time
	lockTimeout         time.Duration
	format              Format
	cliLocks            bool    // hold the format's CLI locks during changes
	carryState          bool    // carry account-independent state on a switch
	staleScale          float64 // scales the CLI lock stale times (tests only)
	generations         int     // backup generations kept per file
	fs                  disk.FS
	sweepAge            time.Duration // age at which leftover temporaries are swept

	// Set when the option was given, so that the format's defaults apply
	// to the names left unset.
	slotTemplateSet, liveNameSet, fingerprintTemplateSet bool
}

func defaultConfig() config {
	return config{
		grace:       DefaultGrace,
		logger:      slog.New(discardHandler{}),
		now:         time.Now,
		lockTimeout: DefaultLockTimeout,
		format:      ClaudeCode,
		cliLocks:    true,
		carryState:  true,
		staleScale:  1,
		generations: DefaultBackupGenerations,
		fs:          disk.OS{},
		sweepAge:    sweepAge,
	}
}

// WithCredsDir sets the directory that holds the live path, the slots and
// their sidecars. Required.
func WithCredsDir(dir string) Option {
	return func(c *config) { c.credsDir = dir }
}

// WithSubscriptions sets the configured slot names, in the order used by
// every lookup that picks "the first" match. Required, at least one.
func WithSubscriptions(subs ...string) Option {
	return func(c *config) { c.subs = append([]string(nil), subs...) }
}

// WithSlotTemplate sets the slot file name relative to the creds dir. It must
// contain "{sub}" and may contain a directory part ("slots/{sub}.json"). The
// default is the format's, DefaultSlotTemplate for [ClaudeCode].
func WithSlotTemplate(tmpl string) Option {
	return func(c *config) { c.slotTemplate, c.slotTemplateSet = tmpl, true }
}

// WithLiveName sets the live path's file name inside the creds dir. It must be
// a plain file name. The default is the format's, DefaultLiveName for
// [ClaudeCode].
func WithLiveName(name string) Option {
	return func(c *config) { c.liveName, c.liveNameSet = name, true }
}

// WithFingerprintTemplate sets the identity sidecar's name relative to the
// creds dir. It must contain "{sub}". The default is the format's slot
// template followed by ".fingerprint.json" (DefaultFingerprintTemplate for
// [ClaudeCode]), whatever [WithSlotTemplate] says.
func WithFingerprintTemplate(tmpl string) Option {
	return func(c *config) { c.fingerprintTemplate, c.fingerprintTemplateSet = tmpl, true }
}

// WithGrace sets the safety margin: a token that expires within d of now is
// treated as already stale. Negative values are rejected by New.
func WithGrace(d time.Duration) Option {
	return func(c *config) { c.grace = d }
}

// WithLockGuard sets the busy-signal probe. Automated switches and heals are
// deferred while it returns a non-empty list; [Force] overrides it.
func WithLockGuard(guard func() []string) Option {
	return func(c *config) { c.lockGuard = guard }
}

// WithOnSwitch sets a hook called after every successful switch or heal with
// the sub and the reason. It runs while the manager's lock is held, so it
// must not call back into a mutating method of the same Manager; and, with
// the CLI's locks on, while those are held too: a CLI's token refresh waits
// for it, so keep it short (or use [WithOnChange], which runs once every
// lock is released).
func WithOnSwitch(hook func(sub, reason string)) Option {
	return func(c *config) { c.onSwitch = hook }
}

// WithLogger sets the structured logger. The default discards everything.
// The logger never receives token material.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithClock sets the clock used for freshness checks and sidecar timestamps.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// WithLockTimeout sets how long [Manager.SwitchTo], [Manager.HealDriftTo] and
// [Manager.CaptureSlotFingerprint] wait for the manager's exclusive file lock before
// returning [ErrLockTimeout]. Zero means a single attempt.
func WithLockTimeout(d time.Duration) Option {
	return func(c *config) { c.lockTimeout = d }
}

// WithFormat sets the credential file format. The default is [ClaudeCode].
// The live name, slot template and fingerprint template follow the format
// unless their own options are given.
func WithFormat(f Format) Option {
	return func(c *config) { c.format = f }
}

// WithCLILocks sets whether every change also holds the locks the format's
// CLI takes around a token refresh, so that a switch or heal never
// interleaves with one. On by default.
//
//   - [ClaudeCode]: the lock directories "<creds dir>/.oauth_refresh.lock" and
//     "<real creds dir>.lock" (stale after 60 s, the longest of the
//     supported releases) and "<creds dir>/.storage-write.lock" (stale after
//     15 s), taken in that order the way Claude Code's lock library
//     (proper-lockfile) takes them: created with mkdir, taken over once
//     abandoned (mtime older than the stale time) and never while the owner
//     record ".oauth_refresh.lock.owner" names a live process, their mtime
//     refreshed at least every 5 s while held, and removed on release only
//     if still this holder's. A legacy lock whose parent directory is not
//     writable is gone without, as Claude Code does. A lock found taken over
//     before the live path changes abandons the change with [ErrLockLost].
//   - [CodexCLI]: an exclusive flock on "<creds dir>/auth.lock", the lock Codex
//     CLI takes before it re-reads and commits auth.json. Codex holds no lock
//     during the network part of its refresh: use [ProcessGuard] to defer
//     changes while it runs.
//   - [GeminiCLI]: Gemini CLI takes no lock; nothing is held.
//
// Turn them off only for a creds dir no CLI uses, or in tests.
func WithCLILocks(on bool) Option {
	return func(c *config) { c.cliLocks = on }
}

// WithCarryState sets whether a switch with the [ClaudeCode] format carries
// the live file's account-independent state into the target slot before it
// swaps the link. On by default.
//
// Claude Code's .credentials.json holds more than the account's login
// (claudeAiOauth): MCP server logins (mcpOAuth, mcpOAuthClientConfig,
// mcpXaaIdp, mcpXaaIdpConfig), pluginSecrets, trustedDeviceToken,
// designOauth, gatewayTrust, and keys yet to come. A whole-file switch would
// roll all of them back to the target slot's old copy, and MCP refresh
// tokens may be single-use. So the target slot is first rewritten
// (atomically, its old content kept as its backup, under the locks) to hold
// the live file's current value of every top-level key but claudeAiOauth;
// the slot's claudeAiOauth bytes, identity and expiry are unchanged, and keys
// only the slot has are kept. A live file that is not a readable JSON object
// leaves the slot as it is (logged). Gemini CLI and Codex CLI files hold
// only the account: their slots stay whole files.
func WithCarryState(on bool) Option {
	return func(c *config) { c.carryState = on }
}

// WithRefreshLock turns the format's CLI locks on; dir is ignored, since the
// lock paths follow from the format and the creds dir.
//
// Deprecated: The CLI locks are on by default; use [WithCLILocks].
func WithRefreshLock(dir string) Option {
	return WithCLILocks(true)
}

// WithBackupGenerations sets how many older backups of each file are kept
// in "<creds dir>/.credslots/backups/" besides its newest backup
// "<path>.prev" (default [DefaultBackupGenerations]). A backup is never
// overwritten; past n generations the oldest is removed. n must be at least 1.
func WithBackupGenerations(n int) Option {
	return func(c *config) { c.generations = n }
}

// applyFormatDefaults fills the names no option set from the format.
func (c *config) applyFormatDefaults() {
	if c.format == nil {
		return
	}
	if !c.liveNameSet {
		c.liveName = c.format.DefaultLiveName()
	}
	if !c.slotTemplateSet {
		c.slotTemplate = c.format.DefaultSlotTemplate()
	}
	if !c.fingerprintTemplateSet {
		c.fingerprintTemplate = c.format.DefaultSlotTemplate() + ".fingerprint.json"
	}
}

// invalid builds an [ErrInvalidConfig] error naming the problem.
func invalid(format string, args ...any) error {
	return fmt.Errorf("credslots: invalid config: %s: %w", fmt.Sprintf(format, args...), ErrInvalidConfig)
}

// validate checks everything that can be checked without touching the disk.
func (c *config) validate() error {
	if c.format == nil {
		return invalid("format must not be nil")
	}
	if c.credsDir == "" {
		return invalid("creds dir is required")
	}
	if len(c.subs) == 0 {
		return invalid("subscriptions must be non-empty")
	}
	seen := make(map[string]bool, len(c.subs))
	for _, s := range c.subs {
		if err := validateSubName(s); err != nil {
			return err
		}
		if seen[s] {
			return invalid("duplicate subscription %q", s)
		}
		seen[s] = true
	}
	if err := validateTemplate("slot template", c.slotTemplate); err != nil {
		return err
	}
	if err := validateTemplate("fingerprint template", c.fingerprintTemplate); err != nil {
		return err
	}
	if c.liveName == "" || c.liveName == "." || c.liveName == ".." ||
		strings.ContainsAny(c.liveName, `/\`+"\x00") {
		return invalid("live name %q must be a plain file name", c.liveName)
	}
	if c.grace < 0 {
		return invalid("grace must not be negative (got %s)", c.grace)
	}
	if c.generations < 1 {
		return invalid("backup generations must be at least 1 (got %d)", c.generations)
	}
	if c.lockTimeout < 0 {
		return invalid("lock timeout must not be negative (got %s)", c.lockTimeout)
	}
	return nil
}

func validateSubName(s string) error {
	switch {
	case s == "":
		return invalid("subscription name must not be empty")
	case s == "." || s == ".." || s == "prev" || s == "lock":
		return invalid("subscription name %q is not allowed", s)
	case strings.ContainsAny(s, `/\`+"\x00"):
		return invalid("subscription name %q must not contain a path separator or NUL", s)
	case !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0:
		return invalid("subscription name %q must be UTF-8 without control characters", s)
	case strings.Contains(s, tmpMarkerStem):
		return invalid("subscription name %q contains the temporary-file marker %q", s, tmpMarkerStem)
	}
	return nil
}

// validateTemplate checks a {sub} template for presence of the placeholder and
// for being a relative path that stays inside the creds dir.
func validateTemplate(what, tmpl string) error {
	if !strings.Contains(tmpl, subPlaceholder) {
		return invalid("%s %q must contain %s", what, tmpl, subPlaceholder)
	}
	if strings.ContainsRune(tmpl, 0) || strings.Contains(tmpl, `\`) {
		return invalid("%s %q must not contain NUL or a backslash", what, tmpl)
	}
	if filepath.IsAbs(tmpl) || strings.HasPrefix(tmpl, "/") {
		return invalid("%s %q must be relative to the creds dir", what, tmpl)
	}
	// Sub names cannot contain separators, so checking the template's own
	// elements (with the placeholder as one opaque name) decides escape.
	for _, elem := range strings.Split(tmpl, "/") {
		if elem == ".." || elem == "." {
			return invalid("%s %q must not contain %q elements", what, tmpl, elem)
		}
	}
	if strings.HasSuffix(tmpl, "/") || strings.Contains(tmpl, "//") {
		return invalid("%s %q has an empty path element", what, tmpl)
	}
	return nil
}

// expand replaces the placeholder in tmpl with sub.
func expand(tmpl, sub string) string {
	return strings.ReplaceAll(tmpl, subPlaceholder, sub)
}
