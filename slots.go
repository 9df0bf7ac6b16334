package credslots

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gptme/credslots/internal/credfile"
	"github.com/gptme/credslots/internal/disk"
)

// Manager performs the offline safety checks around one creds dir's live
// symlink and its slots. Build it with New.
//
// A Manager holds no mutable state of its own and is safe for concurrent use.
// Reads take no lock. Every change ([Manager.SwitchTo], [Manager.HealDriftTo], [Manager.HealDrift],
// [Manager.CaptureSlotFingerprint], Restore) holds an exclusive advisory lock on
// "<creds dir>/.credslots/lock" and the format's CLI locks (see
// [WithCLILocks]) while it changes files, so changes from any number of
// goroutines and processes are serialized, and never interleave with the
// CLI's own token refresh. The zero Manager is not usable: build one with
// [New].
type Manager struct {
	cfg          config
	dir          string
	live         string
	private      string // "<creds dir>/.credslots": lock, journal, backups
	lockPath     string
	statePath    string // the state file, joined once
	leasesPath   string // the leases directory, joined once
	claudeInside string // "<creds dir>/.claude.json", joined once
	subs         []string
	slots        map[string]string          // sub -> slot path
	bySlot       map[string]string          // slot path -> sub
	byTarget     map[string]string          // live symlink target, as the package writes it -> sub
	prints       map[string]string          // sub -> fingerprint sidecar path
	held         atomic.Pointer[LockHolder] // the CLI locks the change in progress holds
	locks        lockCache                  // what the locks keep between changes (lock.go)
	memo         memos                      // what the checks' reads found (memo.go)
}

// New builds a Manager from options. It touches no file. It returns an error
// wrapping [ErrInvalidConfig] that names the problem when the configuration is
// incomplete or unsafe: no creds dir, no subscriptions, a sub name that is
// empty, "." or "..", or contains a path separator or NUL, a duplicate sub, a
// template without "{sub}", an absolute template or one that escapes the creds
// dir, a live name with a path separator, a negative grace or lock timeout,
// or two derived paths (live, slots, sidecars, backups, lock) that coincide.
func New(opts ...Option) (*Manager, error) {
	c := defaultConfig()
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	c.applyFormatDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	// Absolute, once: a relative creds dir would compare unequal to the
	// absolute paths seats and locks are checked as, and would follow the
	// process's working directory.
	dir, err := filepath.Abs(c.credsDir)
	if err != nil {
		return nil, fmt.Errorf("credslots: creds dir %q: %v: %w", c.credsDir, err, ErrInvalidConfig)
	}
	m := &Manager{
		cfg:      c,
		dir:      dir,
		subs:     append([]string(nil), c.subs...),
		slots:    make(map[string]string, len(c.subs)),
		bySlot:   make(map[string]string, len(c.subs)),
		byTarget: make(map[string]string, len(c.subs)),
		prints:   make(map[string]string, len(c.subs)),
	}
	m.live = filepath.Join(m.dir, c.liveName)
	m.private = filepath.Join(m.dir, privateDirName)
	m.lockPath = filepath.Join(m.private, "lock")
	m.statePath = filepath.Join(m.private, stateName)
	m.leasesPath = filepath.Join(m.private, leasesDirName)
	m.claudeInside = filepath.Join(m.dir, claudeJSONName)

	locks := c.format.cliLocks(m.dir, m.dir)
	all := make([]derived, 0, 4+2*len(locks)+3*len(m.subs))
	all = append(all,
		derived{m.live, "the live path", ""},
		derived{m.live + prevSuffix, "the live backup", ""},
		derived{m.private, "the package's private directory", ""},
		derived{m.live + lockSuffix, "the CLI's commit lock", ""})
	for _, cl := range locks {
		all = append(all, derived{cl.path, "the CLI lock " + filepath.Base(cl.path), ""})
		if cl.writesOwner {
			all = append(all, derived{ownerPathFor(cl.path), "the CLI lock's owner record " + filepath.Base(ownerPathFor(cl.path)), ""})
		}
	}
	for _, sub := range m.subs {
		slotRel, printRel := expand(c.slotTemplate, sub), expand(c.fingerprintTemplate, sub)
		for _, rel := range [2]string{slotRel, printRel} {
			if !filepath.IsLocal(rel) {
				return nil, invalid("template expands to %q for sub %q, outside the creds dir", rel, sub)
			}
			if first, _, _ := strings.Cut(rel, "/"); first == privateDirName {
				return nil, invalid("template expands to %q for sub %q, inside the package's private directory", rel, sub)
			}
			if err := checkNameLengths(rel); err != nil {
				return nil, invalid("sub %q: %v", sub, err)
			}
		}
		slot, fp := joinLocal(m.dir, slotRel), joinLocal(m.dir, printRel)
		m.slots[sub], m.bySlot[slot], m.prints[sub] = slot, sub, fp
		if target := m.symlinkTarget(sub); m.byTarget[target] == "" {
			m.byTarget[target] = sub
		}
		all = append(all,
			derived{slot, "slot", sub},
			derived{slot + prevSuffix, "the backup of slot", sub},
			derived{fp, "the fingerprint of", sub})
	}
	seen := make(map[string]int, len(all))
	for i, d := range all {
		if other, dup := seen[d.path]; dup {
			return nil, invalid("%s and %s are the same path %s", all[other].describe(), d.describe(), d.path)
		}
		seen[d.path] = i
	}
	return m, nil
}

// derived is a path New derives from the options, and what it is: what,
// followed by the quoted sub when the path is a sub's. New checks that no two
// are the same path, and describes them only when two are.
type derived struct{ path, what, sub string }

func (d derived) describe() string {
	if d.sub == "" {
		return d.what
	}
	return fmt.Sprintf("%s %q", d.what, d.sub)
}

// nameMax is the longest file name the package creates (NAME_MAX on Linux,
// macOS and Windows file systems alike).
const nameMax = 255

// longestTempSuffix is the most that a temporary or backup name adds to the
// base name of the file it stands for.
const longestTempSuffix = 1 + len(tmpLinkMarker) + 13 + len(prevSuffix)

// checkNameLengths refuses a relative path whose file name, or the names of
// its temporaries, backups and backup generations, pass the name limit.
func checkNameLengths(rel string) error {
	for rest := rel; rest != ""; {
		var elem string
		elem, rest, _ = strings.Cut(rest, "/")
		if len(elem) > nameMax {
			return fmt.Errorf("name %q is longer than %d bytes", elem, nameMax)
		}
	}
	base := path.Base(rel)
	if len(base)+longestTempSuffix > nameMax || !generationNameFits(rel+prevSuffix) {
		return fmt.Errorf("name %q leaves no room for its temporary and backup names within %d bytes", base, nameMax)
	}
	return nil
}

// generationNameFits reports whether generationName(rel, t) is within
// nameMax for any t (the time is fixed-width), without building the name
// when even escaping every byte (which at most triples it) would fit.
func generationNameFits(rel string) bool {
	if 3*len(rel)+1+len(generationTime) <= nameMax {
		return true
	}
	return len(generationName(rel, time.Time{})) <= nameMax
}

// CredsDir returns the creds dir, cleaned.
func (m *Manager) CredsDir() string { return m.dir }

// Subscriptions returns a copy of the configured subs in configured order.
func (m *Manager) Subscriptions() []string { return append([]string(nil), m.subs...) }

// SlotPath returns the slot file's path for sub: the creds dir joined with the
// expanded slot template. It does not check that sub is configured.
func (m *Manager) SlotPath(sub string) string {
	if p, ok := m.slots[sub]; ok {
		return p
	}
	return filepath.Join(m.dir, expand(m.cfg.slotTemplate, sub))
}

// FingerprintPath returns the identity sidecar's path for sub. It does not
// check that sub is configured.
func (m *Manager) FingerprintPath(sub string) string {
	if p, ok := m.prints[sub]; ok {
		return p
	}
	return filepath.Join(m.dir, expand(m.cfg.fingerprintTemplate, sub))
}

// LivePath returns the live credential path.
func (m *Manager) LivePath() string { return m.live }

// joinLocal is filepath.Join(dir, rel) for a clean dir and a local rel,
// without cleaning dir again when rel is clean already.
func joinLocal(dir, rel string) string {
	if dir != string(filepath.Separator) && dir != "." && rel != "." && filepath.IsLocal(rel) && filepath.Clean(rel) == rel {
		return dir + string(filepath.Separator) + rel
	}
	return filepath.Join(dir, rel)
}

// symlinkTarget is the relative target the live symlink gets for sub.
func (m *Manager) symlinkTarget(sub string) string {
	// A slot is the creds dir joined with a local, cleaned name: that name
	// is the target, without filepath.Rel's cleaning of both paths again.
	slot := m.slots[sub]
	if n := len(m.dir); len(slot) > n+1 && slot[:n] == m.dir && slot[n] == filepath.Separator {
		return slot[n+1:]
	}
	rel, err := filepath.Rel(m.dir, m.slots[sub])
	if err != nil {
		return expand(m.cfg.slotTemplate, sub)
	}
	return rel
}

// ActiveSubscription returns the sub whose slot the live symlink resolves to.
// It reports false when the live path is missing, a regular file, a broken
// symlink, or a symlink to anything that is not a configured slot. It costs
// a readlink and one stat when the link names a slot, whatever the number of
// slots; only a link that reaches a slot some other way (through another
// symlink, or an absolute path spelled differently) makes it compare files,
// and then, when several slots are the same file, the first in configured
// order wins.
func (m *Manager) ActiveSubscription() (string, bool) {
	fsys := m.cfg.fs
	buf := disk.GetBuffer()
	link := (*buf)[:cap(*buf)]
	// Readlink fails for anything but a symlink, so it doubles as the Lstat.
	n, err := fsys.ReadlinkInto(m.live, link)
	if err != nil && !errors.Is(err, disk.ErrLinkTooLong) {
		disk.PutBuffer(buf, link[:0]) // a failed readlink wrote nothing
		return "", false
	}
	link = link[:n]
	// The common case: the target exactly as a switch writes it, looked up
	// without a copy. It names that slot (the live path is in the creds
	// dir, the target is relative to it), so the stat need only say that
	// it resolves to a regular file.
	sub, named := m.byTarget[string(link)]
	if named && err == nil {
		disk.PutBuffer(buf, link)
		mode, err := fsys.StatMode(m.live)
		if err != nil || !mode.IsRegular() {
			return "", false
		}
		return sub, true
	}
	spelled := string(link)
	cut := err != nil // a target longer than the buffer: compare files only
	disk.PutBuffer(buf, link)
	target, err := fsys.Stat(m.live)
	if err != nil || !target.Mode().IsRegular() {
		return "", false
	}
	if sub, ok := m.slotNamed(spelled); ok && !cut {
		return sub, true
	}
	for _, sub := range m.subs {
		if si, err := fsys.Stat(m.slots[sub]); err == nil && os.SameFile(si, target) {
			return sub, true
		}
	}
	return "", false
}

// slotNamed returns the sub whose slot path a symlink target (relative to
// the live path's directory, or absolute) names.
func (m *Manager) slotNamed(link string) (string, bool) {
	if sub, ok := m.byTarget[link]; ok {
		return sub, true // the target as a switch writes it: that slot's path
	}
	if !filepath.IsAbs(link) {
		link = filepath.Join(filepath.Dir(m.live), link)
	}
	sub, ok := m.bySlot[filepath.Clean(link)]
	return sub, ok
}

// AvailableSubscriptions returns, in configured order, the subs whose slot
// file exists. Freshness is not checked.
func (m *Manager) AvailableSubscriptions() []string {
	var out []string
	for _, sub := range m.subs {
		if _, err := m.cfg.fs.Stat(m.slots[sub]); err == nil {
			out = append(out, sub)
		}
	}
	return out
}

// knows reports whether sub is configured.
func (m *Manager) knows(sub string) bool {
	_, ok := m.slots[sub]
	return ok
}

// unknownSub is the reason given for a sub that is not configured.
func (m *Manager) unknownSub(sub string) string {
	return fmt.Sprintf("unknown subscription: %q (known: %s)", sub, strings.Join(m.subs, ", "))
}

// ReadSlotExpiry returns the access token's expiry (UTC) in a Claude Code
// credential file. It reports false when the file is missing, unreadable,
// not JSON, or has no numeric claudeAiOauth.expiresAt within the years 1 to
// 9999. It never panics.
func ReadSlotExpiry(path string) (time.Time, bool) {
	buf := disk.GetBuffer()
	data, err := disk.ReadRegularInto(path, *buf, disk.MaxFileSize)
	var c credential
	if err == nil {
		c = ClaudeCode.parseFor(data, credfile.Expiry)
	}
	disk.PutBuffer(buf, data)
	return c.expiry, c.hasExpiry()
}

// SlotIsFresh reports whether the Claude Code credential at path is usable
// for longer than grace after now, with a reason for logs: "slot missing:
// <name>" (also for a symlink loop or a path through a non-directory),
// "permission denied reading <name>", "cannot read <name>: <cause>" (a FIFO,
// device or file over 1 MiB), "unreadable or no expiresAt in <name>",
// "expired <N>m ago (at <expiry>)", "expires within grace (<N>s left, at
// <expiry>)" or "valid until <expiry>", times in RFC 3339 UTC. Expiries are
// compared exactly, never through a float: an expiry at exactly now+grace is
// not fresh.
func SlotIsFresh(path string, grace time.Duration, now time.Time) (bool, string) {
	buf := disk.GetBuffer()
	data, err := disk.ReadRegularInto(path, *buf, disk.MaxFileSize)
	fresh, why := freshness(ClaudeCode, path, data, err, grace, now)
	disk.PutBuffer(buf, data)
	return fresh, why
}

// SlotExpiry returns the expiry of sub's slot in the Manager's format. It
// reports false for an unknown sub or an unreadable expiry.
func (m *Manager) SlotExpiry(sub string) (time.Time, bool) {
	if !m.knows(sub) {
		return time.Time{}, false
	}
	buf := disk.GetBuffer()
	path := m.slots[sub]
	data, err := m.cfg.fs.ReadFileInto(path, *buf)
	var c credential
	if err == nil {
		c = m.parsed(path, data, credfile.Expiry)
	}
	disk.PutBuffer(buf, data)
	return c.expiry, c.hasExpiry()
}

// SlotIsFresh is the package-level [SlotIsFresh] for sub's slot, with the
// Manager's format, grace and clock. An unknown sub is not fresh.
func (m *Manager) SlotIsFresh(sub string) (bool, string) {
	path, ok := m.slots[sub]
	if !ok {
		return false, m.unknownSub(sub)
	}
	// The bytes are parsed (or known from a read before: see parsed) and
	// forgotten before return: a pooled buffer.
	buf := disk.GetBuffer()
	data, err := m.cfg.fs.ReadFileInto(path, *buf)
	var c credential
	if err == nil {
		c = m.parsed(path, data, credfile.Expiry)
	}
	fresh, why := freshnessOf(m.cfg.format, path, c, err, m.cfg.grace, m.cfg.now())
	disk.PutBuffer(buf, data)
	return fresh, why
}

// freshness decides [SlotIsFresh] from one read of the slot at path. It
// reads the expiry alone: no fingerprint, no blank scan.
func freshness(f Format, path string, data []byte, readErr error, grace time.Duration, now time.Time) (bool, string) {
	var c credential
	if readErr == nil {
		c = f.parseFor(data, credfile.Expiry)
	}
	return freshnessOf(f, path, c, readErr, grace, now)
}

// freshnessOf is freshness for a credential already parsed (when readErr is
// nil). The reasons that name the slot name its base name, computed only
// for them.
func freshnessOf(f Format, path string, c credential, readErr error, grace time.Duration, now time.Time) (bool, string) {
	if readErr != nil || !c.hasExpiry() {
		return staleReason(f, filepath.Base(path), readErr)
	}
	fresh, why := expiryVerdict(c.expiry, grace, now)
	// A hint is given only for an expiry before 2000 or from 2200 on (the
	// years unitHint looks at); the common expiry skips its date
	// arithmetic.
	if u := c.expiry.Unix(); u < year2000 || u >= year2200 {
		if hint := unitHint(f, c.expiry); hint != "" {
			why += ": " + hint
		}
	}
	return fresh, why
}

// staleReason is why a slot named name that could not be read (readErr),
// or has no readable expiry, is not fresh.
func staleReason(f Format, name string, readErr error) (bool, string) {
	if isMissing(readErr) {
		return false, "slot missing: " + name
	}
	if errors.Is(readErr, fs.ErrPermission) {
		return false, "permission denied reading " + name
	}
	if readErr != nil {
		return false, fmt.Sprintf("cannot read %s: %s", name, readCause(readErr))
	}
	return false, fmt.Sprintf("unreadable or no %s in %s", f.expiryField(), name)
}

// readCause is what went wrong in a failed read, without the path the error
// already carries.
func readCause(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	if errors.Is(err, ErrTooLarge) {
		return fmt.Sprintf("larger than %d bytes", disk.MaxFileSize)
	}
	return err.Error()
}

// expiryVerdict compares a known expiry with now+grace.
func expiryVerdict(expiry time.Time, grace time.Duration, now time.Time) (bool, string) {
	now = now.Round(0)
	if expiry.After(now.Add(grace)) {
		return true, validUntil(expiry)
	}
	at := formatTime(expiry)
	if !now.Before(expiry) {
		return false, fmt.Sprintf("expired %dm ago (at %s)", wholeSeconds(expiry, now)/60, at)
	}
	return false, fmt.Sprintf("expires within grace (%ds left, at %s)", wholeSeconds(now, expiry), at)
}

// validUntil is the common reason, "valid until <expiry>": it depends on
// the expiry's second alone, and a slot's expiry changes only when its
// token is refreshed, so the last few built are kept (validUntils) and a
// check of an unchanged slot allocates nothing.
func validUntil(expiry time.Time) string {
	sec := expiry.Unix()
	memo := &validUntils[validUntilSlot(sec)]
	if v := memo.Load(); v != nil && v.sec == sec {
		return v.why
	}
	var b [64]byte
	v := &validUntilReason{sec: sec, why: string(appendRFC3339(append(b[:0], "valid until "...), expiry))}
	memo.Store(v)
	return v.why
}

// validUntilSlot is where validUntils keeps the reason for an expiry at
// Unix second sec: a Fibonacci hash, which spreads near seconds apart.
func validUntilSlot(sec int64) uint64 {
	return uint64(sec) * 0x9e3779b97f4a7c15 >> (64 - validUntilBits)
}

// validUntilBits sizes validUntils: 16 expiries, a few per configured sub.
const validUntilBits = 4

// validUntils holds reasons validUntil built, by a hash of their second:
// an entry is replaced whole, so a concurrent reader sees an old or a new
// pair, never a mix.
var validUntils [1 << validUntilBits]atomic.Pointer[validUntilReason]

// validUntilReason is one of validUntils' entries.
type validUntilReason struct {
	sec int64
	why string
}

// wholeSeconds is the whole seconds from a to b (b not before a), without
// the overflow of time.Duration past 292 years: an expiry in year 1 says its
// true age.
func wholeSeconds(a, b time.Time) int64 {
	s := b.Unix() - a.Unix()
	if b.Nanosecond() < a.Nanosecond() {
		s--
	}
	return s
}

// formatTime renders t in RFC 3339, UTC.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// The Unix seconds of 2000-01-01 and 2200-01-01, UTC: unitHint's bounds.
const (
	year2000 = 946684800
	year2200 = 7258118400
)

// appendRFC3339 appends t in UTC as time.RFC3339 formats it, for the years
// 1 to 9999 (every expiry the formats read), from its Unix seconds in one
// civil-date computation (days to year, month, day as in Howard Hinnant's
// days_from_civil inverse), without time.Format's layout interpretation.
func appendRFC3339(b []byte, t time.Time) []byte {
	sec := t.Unix()
	days := sec / 86400
	rem := sec % 86400
	if rem < 0 {
		days, rem = days-1, rem+86400
	}
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day := int(doy - (153*mp+2)/5 + 1)
	month := int(mp + 3)
	if month > 12 {
		month -= 12
	}
	year := int(yoe + era*400)
	if month <= 2 {
		year++
	}
	two := func(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }
	b = append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-')
	b = append(two(b, month), '-')
	b = append(two(b, day), 'T')
	b = append(two(b, int(rem/3600)), ':')
	b = append(two(b, int(rem/60%60)), ':')
	return append(two(b, int(rem%60)), 'Z')
}
