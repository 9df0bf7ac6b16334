package credslots

// This file keeps Claude Code's per-account metadata (oauthAccount in
// .claude.json) with each slot, and splices the target's into .claude.json
// on a switch, so that Claude Code shows the account it now uses.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gptme/credslots/internal/atomicfile"
	"github.com/gptme/credslots/internal/credfile"
	"github.com/gptme/credslots/internal/disk"
	"github.com/gptme/credslots/internal/jsonscan"
)

const (
	// claudeJSONName is Claude Code's state file: inside the config dir
	// when CLAUDE_CONFIG_DIR is set, else beside ~/.claude.
	claudeJSONName = ".claude.json"
	// accountMember is its per-account member.
	accountMember = credfile.AccountMember
	// maxClaudeJSON bounds the read of .claude.json.
	maxClaudeJSON = credfile.MaxClaudeJSON
)

// loginSettle is how long after a write of .claude.json that left it with
// no account a heal waits before it takes that for no evidence: a /login
// writes the new account within milliseconds of the credentials.
const loginSettle = 2 * time.Second

// claudeJSONSettling reports whether .claude.json was written within
// loginSettle.
func (m *Manager) claudeJSONSettling() bool {
	path := m.claudeJSONPath()
	if path == "" {
		return false
	}
	fi, err := m.cfg.fs.Lstat(path)
	if err != nil {
		return false
	}
	age := time.Since(fi.ModTime())
	return age >= 0 && age < loginSettle // a time ahead of the clock is no write just made
}

// claudeJSONPath returns Claude Code's .claude.json for this creds dir:
// when the creds dir is $CLAUDE_SECURESTORAGE_CONFIG_DIR, where Claude Code
// 2.1.220 and later keep only the credentials, the config dir's
// ($CLAUDE_CONFIG_DIR/.claude.json, else ~/.claude.json); otherwise
// "<creds dir>/.claude.json" when it exists, else ".claude.json" beside a
// creds dir named .claude when that exists; "" when there is none.
func (m *Manager) claudeJSONPath() string {
	if path := secureStorageClaudeJSON(m.dir); path != "" {
		if fi, err := m.cfg.fs.Lstat(path); err == nil && fi.Mode().IsRegular() {
			return path
		}
		return ""
	}
	inside := m.claudeInside
	if fi, err := m.cfg.fs.Lstat(inside); err == nil && fi.Mode().IsRegular() {
		return inside
	}
	if filepath.Base(m.dir) == ".claude" {
		beside := filepath.Join(filepath.Dir(m.dir), claudeJSONName)
		if fi, err := m.cfg.fs.Lstat(beside); err == nil && fi.Mode().IsRegular() {
			return beside
		}
	}
	return ""
}

// ClaudeJSONPath returns Claude Code's .claude.json, where it keeps the
// account it is logged in to (oauthAccount), as the Manager finds it for
// its creds dir: "" for a format other than [ClaudeCode], or when there is
// none. Heals and adopts read the account from it; switches splice the
// target's remembered account into it.
func (m *Manager) ClaudeJSONPath() string {
	if !m.cfg.format.carriesState() {
		return ""
	}
	return m.claudeJSONPath()
}

// accountIn returns the raw oauthAccount object of a .claude.json document
// (see credfile.AccountIn).
func accountIn(data []byte) []byte { return credfile.AccountIn(data) }

// sidecarAccount returns the oauthAccount a sidecar remembers; nil when none.
func sidecarAccount(data []byte) []byte {
	_, v := credfile.Sidecar(data)
	if v == nil {
		return nil
	}
	return compactJSON(v)
}

// compactJSON is raw JSON without insignificant space, so that the same
// object compares equal however it was indented.
func compactJSON(raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// currentAccount returns the oauthAccount .claude.json shows, compacted,
// when it is sub's: only while the live path points at sub's slot, and
// only for the [ClaudeCode] format with state carrying on. nil otherwise.
func (m *Manager) currentAccount(sub string) []byte {
	if !m.cfg.carryState || !m.cfg.format.carriesState() {
		return nil
	}
	if active, ok := m.ActiveSubscription(); !ok || active != sub {
		return nil
	}
	return m.shownAccount()
}

// shownAccount returns the oauthAccount .claude.json shows now, compacted;
// nil for a format that keeps none, or when there is no .claude.json or it
// shows no account.
func (m *Manager) shownAccount() []byte {
	if !m.cfg.format.carriesState() {
		return nil
	}
	return m.shownAccountAt(m.claudeJSONPath())
}

// shownAccountAt is shownAccount of the .claude.json at path ("" for none).
func (m *Manager) shownAccountAt(path string) []byte {
	if !m.cfg.format.carriesState() || path == "" {
		return nil
	}
	data, err := disk.ReadRegularMax(path, maxClaudeJSON)
	if err != nil {
		return nil
	}
	if a := accountIn(data); a != nil {
		return compactJSON(a)
	}
	return nil
}

// accountLabel names an oauthAccount for people: its e-mail address, else
// its accountUuid; never a token.
func accountLabel(acct []byte) string {
	if email, ok := jsonscan.String(jsonscan.Fields(acct, "emailAddress")[0]); ok && email != "" {
		return email
	}
	if id, ok := jsonscan.String(jsonscan.Fields(acct, "accountUuid")[0]); ok && id != "" {
		return "account " + id
	}
	return "an account"
}

// sameAccount reports whether two oauthAccount objects are one account.
func sameAccount(a, b []byte) bool { return accountID(a) == accountID(b) }

// accountOwner returns the configured sub other than except that remembers
// the same account (by accountUuid, else the whole object) as acct; "" when
// none, or acct is nil.
func (m *Manager) accountOwner(acct []byte, except string) string {
	if acct == nil {
		return ""
	}
	return m.accountIDOwner(accountID(acct), except)
}

// shownBySeat reports whether .claude.json may show acct because a seat's
// Claude Code wrote it there, not home's: acct is the account a sub
// remembers whose lease may have been live since the journal's last change
// at since (known says there was one): held now, or released or found
// ended since, or ended at a time not known yet. A seat (its own
// $CLAUDE_SECURESTORAGE_CONFIG_DIR) keeps Claude Code's config dir, and with
// it .claude.json, shared with home's.
func (m *Manager) shownBySeat(acct []byte, since time.Time, known bool) bool {
	if acct == nil || !m.leasesMayExist() {
		return false
	}
	id := accountID(acct)
	for _, r := range m.leaseRecords() {
		if _, a, err := m.storedSidecar(r.Sub); err != nil || a == nil || accountID(a) != id {
			continue
		}
		end := r.Released
		if end == nil {
			end = r.Ended
		}
		if !known || end == nil || !end.Before(since) || m.leaseHeld(r.Sub) {
			return true
		}
	}
	return false
}

// accountIDOwner is accountOwner for an account known by its id (see
// accountID).
func (m *Manager) accountIDOwner(id, except string) string {
	for _, sub := range m.subs {
		if sub == except {
			continue
		}
		if _, other, err := m.storedSidecar(sub); err == nil && other != nil && accountID(other) == id {
			return sub
		}
	}
	return ""
}

// accountID identifies an oauthAccount: its accountUuid, or else the whole
// compacted object.
func accountID(acct []byte) string {
	if id, ok := jsonscan.String(jsonscan.Fields(acct, "accountUuid")[0]); ok && id != "" {
		return id
	}
	return string(compactJSON(acct))
}

// spliceLockWait bounds how long a splice waits for .claude.json.lock
// while its change holds the CLI's other locks.
const spliceLockWait = 2 * time.Second

// spliceAccount writes the oauthAccount remembered for sub into
// .claude.json, replacing only that member's value (adding it when absent)
// and leaving every other byte as it was; the old file is kept as a backup
// generation. It does nothing when no account is remembered, there is no
// .claude.json, or it already shows that account. It holds the lock
// directory ".claude.json.lock" the way Claude Code's lock library takes it,
// never follows a symlink at .claude.json, and gives up (logged) rather
// than overwrite a .claude.json that changed while it was being spliced.
//
// It returns the account .claude.json shows afterwards (nil when none, or
// when the splice failed). side is sub's sidecar when the caller read it.
func (m *Manager) spliceAccount(mu *mutation, sub string, side sidecarRead) ([]byte, error) {
	if !side.done {
		side = m.readSidecar(sub)
	}
	acct, err := side.account, side.err
	if err != nil {
		return nil, err
	}
	path := mu.claudeJSONPath(m)
	if acct == nil {
		return m.shownAccountAt(path), nil
	}
	if path == "" {
		return nil, nil
	}
	fsys := m.cfg.fs
	// Claude Code saves .claude.json under a proper-lockfile lock beside it;
	// hold it too, so that neither write undoes the other.
	// The change holds it already when it took the CLI's locks.
	verify := mu.verify
	if !mu.holds(path + lockSuffix) {
		// The change holds Claude Code's storage-write lock meanwhile, on
		// which every credentials write of Claude Code (an MCP token saved
		// after its refresh) gives up after about 7.5 s: the wait is
		// bounded well inside that.
		wait := m.cfg.lockTimeout
		if wait > spliceLockWait {
			wait = spliceLockWait
		}
		lock, err := takeDirLock(context.Background(), fsys, path+lockSuffix, time.Duration(float64(claudeConfigStale)*m.cfg.staleScale), time.Now().Add(wait))
		if err != nil {
			return nil, err
		}
		defer lock.release()
		verify = lock.verify
	}
	before, err := fsys.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !before.Mode().IsRegular() {
		// Gone, or made a symlink (a dotfile manager's), since the change
		// found it: no .claude.json to splice, and a symlink is never
		// followed nor replaced.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("credslots: %s: %w", path, err)
	}
	data, err := disk.ReadRegularMax(path, maxClaudeJSON)
	if err != nil {
		return nil, fmt.Errorf("credslots: read %s: %w", path, err)
	}
	doc, problem := jsonscan.Document(data)
	if problem != "" {
		return nil, fmt.Errorf("credslots: %s is not JSON (%s); account not spliced", path, problem)
	}
	if cur := accountIn(data); cur != nil && bytes.Equal(compactJSON(cur), acct) {
		return acct, nil
	}
	next, ok := spliceMember(data, doc, accountMember, acct)
	if !ok {
		return nil, fmt.Errorf("credslots: %s is not a JSON object; account not spliced", path)
	}
	// The backup is the member that changes, not a whole copy of a file
	// that may be tens of MB.
	if _, err := m.keepGeneration(path, memberBackup(data, accountMember)); err != nil {
		return nil, err
	}
	if again, err := fsys.Lstat(path); err != nil || !again.ModTime().Equal(before.ModTime()) || again.Size() != before.Size() {
		return nil, errors.New("credslots: " + path + " changed meanwhile; account not spliced")
	}
	if err := verify(); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(fsys, path, next, m.ownerFor(path)); err != nil {
		return nil, err
	}
	m.cfg.logger.Info("spliced account", "sub", sub, "path", path)
	return acct, nil
}

// spliceMember returns data with the value of the top-level member name of
// the object doc (data trimmed) replaced by value, or value added as the
// last member when there is none; every other byte stays.
func spliceMember(data, doc []byte, name string, value []byte) ([]byte, bool) {
	members, ok := jsonscan.Members(doc)
	if !ok {
		return nil, false
	}
	for _, mb := range members {
		if mb.Name == name {
			at := offsetIn(data, mb.Value)
			return concat(data[:at], value, data[at+len(mb.Value):]), true
		}
	}
	end := bytes.LastIndexByte(data, '}')
	sep := []byte(",")
	if len(members) == 0 {
		sep = nil
	}
	return concat(data[:end], sep, []byte(`"`+name+`":`), value, data[end:]), true
}

// offsetIn is the offset within s of sub, a subslice of s (doc and its
// members' values are subslices of data).
func offsetIn(s, sub []byte) int {
	return cap(s) - cap(sub)
}

func concat(parts ...[]byte) []byte {
	return bytes.Join(parts, nil)
}

// keepGeneration keeps data, the old content of the file at path (outside
// the slots), as a backup generation in the private directory.
func (m *Manager) keepGeneration(path string, data []byte) (string, error) {
	if err := m.ensurePrivateDir(m.private); err != nil {
		return "", err
	}
	if err := m.ensurePrivateDir(m.backupsDir()); err != nil {
		return "", err
	}
	rel := m.rel(path)
	gen := generationName(rel, time.Now())
	if err := m.writeFile(filepath.Join(m.backupsDir(), gen), data); err != nil {
		return "", err
	}
	m.prune(rel)
	return privateDirName + "/" + backupsDirName + "/" + gen, nil
}

// memberBackup is what a splice keeps of .claude.json: a JSON object with
// only the member it replaces, as it was ({} when there was none).
func memberBackup(data []byte, name string) []byte {
	doc, problem := jsonscan.Document(data)
	if problem != "" {
		return []byte("{}\n")
	}
	v := jsonscan.Fields(doc, name)[0]
	if len(v) == 0 {
		return []byte("{}\n")
	}
	key, _ := json.Marshal(name)
	return append(append(append(append([]byte("{"), key...), ':'), compactJSON(v)...), "}\n"...)
}

// secureStorageClaudeJSON is where Claude Code (2.1.220 and later) finds
// .claude.json when dir is $CLAUDE_SECURESTORAGE_CONFIG_DIR: in the config
// dir, which that variable does not move. "" when dir is not that
// variable's.
func secureStorageClaudeJSON(dir string) string {
	s, ok := os.LookupEnv("CLAUDE_SECURESTORAGE_CONFIG_DIR")
	if !ok {
		return ""
	}
	home, _ := os.UserHomeDir()
	if s == "" {
		s = filepath.Join(home, ".claude") // as Claude Code reads an empty value
	}
	if !sameDir(s, dir) {
		return ""
	}
	if c := os.Getenv("CLAUDE_CONFIG_DIR"); c != "" {
		return absPath(filepath.Join(c, claudeJSONName))
	}
	if home == "" {
		return ""
	}
	return absPath(filepath.Join(home, claudeJSONName))
}

// absPath is path made absolute against the working directory now, as
// every path a change holds a lock at is (the intent record names them
// relative to the creds dir, see lockPathIn); path itself when the working
// directory cannot be read.
func absPath(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return a
	}
	return path
}

// sameDir reports whether a and b name the same directory.
func sameDir(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// claudeJSONLock is the lock directory beside the .claude.json a switch
// splices, taken with the CLI's locks; ok is false when no splice can
// happen.
func (m *Manager) claudeJSONLock(mu *mutation) (cliLock, bool) {
	if !m.cfg.carryState || !m.cfg.format.carriesState() {
		return cliLock{}, false
	}
	path := m.claudeJSONPath()
	// The change splices the .claude.json whose lock it took, or none when
	// there was none: it looks once.
	mu.claudeJSON, mu.claudeJSONSeen = path, true
	if path == "" {
		return cliLock{}, false
	}
	return cliLock{path: path + lockSuffix, stale: claudeConfigStale, name: "Claude Code's .claude.json lock", optional: true}, true
}

// claudeJSONPath is the .claude.json the change found when it took the
// CLI's locks (see claudeJSONLock), else m.claudeJSONPath() now.
func (mu *mutation) claudeJSONPath(m *Manager) string {
	if mu != nil && mu.claudeJSONSeen {
		return mu.claudeJSON
	}
	return m.claudeJSONPath()
}

// holds reports whether the change holds the lock directory path.
func (mu *mutation) holds(path string) bool {
	for _, l := range mu.dirs {
		if l.path == path {
			return true
		}
	}
	return false
}
