package credslots

// This file keeps backups: "<path>.prev" is the newest copy of a slot or of
// the live file, and older copies move to "<creds dir>/.credslots/backups/"
// as generations. No backup is ever overwritten.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

const (
	// privateDirName is the package's own directory in the creds dir: its
	// lock, journal and backup generations.
	privateDirName = ".credslots"
	// backupsDirName holds backup generations inside the private directory.
	backupsDirName = "backups"
	// generationTime names a generation's time; it is fixed-width.
	generationTime = "20060102T150405.000000000Z"
	// DefaultBackupGenerations is how many older backups of each file
	// [WithBackupGenerations] keeps by default.
	DefaultBackupGenerations = 20
)

// Backup is one kept copy of a slot or of the live file.
type Backup struct {
	// Name identifies the backup for Restore: its path relative to the
	// creds dir (".credentials.json.bob.prev", or
	// ".credslots/backups/.credentials.json.bob.20261128T101500.000000000Z").
	Name string `json:"name"`
	Path string `json:"path"`
	// Of is the file it is a copy of, relative to the creds dir.
	Of string `json:"of"`
	// Sub is the sub whose login it holds: the sub whose slot it copies, or,
	// for a copy of the live file, the sub the journal or a sidecar names
	// for its login; "" when none is known.
	Sub string `json:"sub"`
	// Time is when the copy was made, UTC.
	Time time.Time `json:"time"`
	Size int64     `json:"size"`
	// Expiry is the copied token's expiry; nil when unreadable.
	Expiry *time.Time `json:"expiry"`
	// Fingerprint is the copied login's identity fingerprint; "" when none.
	Fingerprint string `json:"fingerprint"`
}

// ensurePrivateDir creates dir with mode 0700 whatever the umask, and
// refuses anything at dir that is not a directory (a symlink included).
func (m *Manager) ensurePrivateDir(dir string) error {
	fsys := m.cfg.fs
	fi, err := fsys.Lstat(dir)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("credslots: %s is not a directory", dir)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("credslots: %s: %w", dir, err)
	}
	if err := fsys.Mkdir(dir, 0o700); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("credslots: create %s: %w", dir, err)
		}
		// Created meanwhile: by another change of ours, or it is no
		// directory of ours at all.
		if fi, err := fsys.Lstat(dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("credslots: %s is not a directory", dir)
		}
		return nil
	}
	if err := fsys.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("credslots: chmod %s: %w", dir, err)
	}
	m.own(dir)
	return nil
}

// backupsDir is where generations live.
func (m *Manager) backupsDir() string { return filepath.Join(m.private, backupsDirName) }

// rel is path relative to the creds dir, with forward slashes.
func (m *Manager) rel(path string) string {
	r, err := filepath.Rel(m.dir, path)
	if err != nil {
		return filepath.Base(path)
	}
	return filepath.ToSlash(r)
}

// generationName names a generation of the file at rel made at t.
func generationName(rel string, t time.Time) string {
	return url.PathEscape(rel) + "." + t.UTC().Format(generationTime)
}

// parseGeneration splits a generation's name into the file it copies and
// its time.
func parseGeneration(name string) (string, time.Time, bool) {
	n := len(generationTime)
	if len(name) < n+2 || name[len(name)-n-1] != '.' {
		return "", time.Time{}, false
	}
	t, err := time.Parse(generationTime, name[len(name)-n:])
	if err != nil {
		return "", time.Time{}, false
	}
	rel, err := url.PathUnescape(name[:len(name)-n-1])
	if err != nil || rel == "" {
		return "", time.Time{}, false
	}
	return rel, t, true
}

// keepBackup makes data the newest backup of path ("<path>.prev"). An
// existing, different "<path>.prev" first becomes a generation, so no backup
// is ever overwritten.
func (m *Manager) keepBackup(path string, data []byte) error {
	if err := m.contained(path); err != nil {
		return err
	}
	fsys := m.cfg.fs
	prev := path + prevSuffix
	old, err := fsys.ReadFile(prev)
	switch {
	case err == nil && bytes.Equal(old, data):
		return nil
	case err == nil:
		if err := m.archive(prev, m.rel(path)); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("credslots: read backup %s: %w", prev, err)
	}
	return m.writeFile(prev, data)
}

// archive moves the file at name into the backups directory as a generation
// of the file at rel, made 0600, then drops the oldest generations past the
// configured count.
func (m *Manager) archive(name, rel string) error {
	fsys := m.cfg.fs
	if err := m.ensurePrivateDir(m.private); err != nil {
		return err
	}
	dir := m.backupsDir()
	if err := m.ensurePrivateDir(dir); err != nil {
		return err
	}
	// Named by when it was archived, so that the newest generation is the
	// one archived last: a rescued file (old by the time a sweep finds it)
	// is never the first to be pruned.
	at := time.Now()
	dest := filepath.Join(dir, generationName(rel, at))
	for {
		if _, err := fsys.Lstat(dest); errors.Is(err, fs.ErrNotExist) {
			break
		}
		at = at.Add(time.Nanosecond)
		dest = filepath.Join(dir, generationName(rel, at))
	}
	if err := fsys.Rename(name, dest); err != nil {
		return fmt.Errorf("credslots: move backup %s to %s: %w", name, dest, err)
	}
	if err := fsys.Chmod(dest, 0o600); err != nil {
		return fmt.Errorf("credslots: chmod %s: %w", dest, err)
	}
	if err := syncDirOf(fsys, dest); err != nil {
		return err
	}
	if err := syncDirOf(fsys, name); err != nil {
		return err
	}
	m.prune(rel)
	return nil
}

// prune removes the oldest generations of rel beyond the configured count.
func (m *Manager) prune(rel string) {
	ents, err := m.cfg.fs.ReadDir(m.backupsDir())
	if err != nil {
		return
	}
	var mine []string
	for _, de := range ents {
		if of, _, ok := parseGeneration(de.Name()); ok && of == rel {
			mine = append(mine, de.Name())
		}
	}
	if len(mine) <= m.cfg.generations {
		return
	}
	sort.Strings(mine) // fixed-width times sort in time order
	for _, name := range mine[:len(mine)-m.cfg.generations] {
		_ = m.cfg.fs.Remove(filepath.Join(m.backupsDir(), name))
	}
}

// rescue moves an unverified entry out of a temporary name into the backups
// directory, as a generation of the live file, so that no sweep deletes it.
func (m *Manager) rescue(name string) {
	if err := m.archive(name, m.rel(m.live)); err != nil {
		m.cfg.logger.Warn("could not rescue a swapped-out live entry", "path", name, "reason", err.Error())
	}
}

// Backups lists every backup of the live file and of the configured slots,
// newest first: each "<path>.prev" and every generation in
// "<creds dir>/.credslots/backups/". It changes nothing and reads each
// backup once for its expiry and fingerprint.
func (m *Manager) Backups() ([]Backup, error) {
	fsys := m.cfg.fs
	subOf := map[string]string{m.rel(m.live): ""}
	for _, sub := range m.subs {
		subOf[m.rel(m.slots[sub])] = sub
	}
	owners := m.loginOwners()
	var out []Backup
	add := func(name, path, of string, at time.Time) {
		data, err := fsys.ReadFile(path)
		if err != nil {
			return
		}
		b := Backup{Name: name, Path: path, Of: of, Sub: subOf[of], Time: at.UTC(), Size: int64(len(data))}
		c := m.cfg.format.parse(data)
		if c.hasExpiry() {
			exp := c.expiry
			b.Expiry = &exp
		}
		b.Fingerprint = c.fingerprint
		if b.Sub == "" && c.fingerprint != "" {
			if b.Sub = owners[c.fingerprint]; b.Sub == "" {
				b.Sub = m.storedOwner(c.fingerprint, "")
			}
		}
		out = append(out, b)
	}
	for of := range subOf {
		path := filepath.Join(m.dir, filepath.FromSlash(of)) + prevSuffix
		if fi, err := fsys.Lstat(path); err == nil && fi.Mode().IsRegular() {
			add(of+prevSuffix, path, of, fi.ModTime())
		}
	}
	ents, err := fsys.ReadDir(m.backupsDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("credslots: list backups: %w", err)
	}
	newestGen := map[string]time.Time{}
	for _, de := range ents {
		if of, at, ok := parseGeneration(de.Name()); ok && de.Type().IsRegular() {
			add(privateDirName+"/"+backupsDirName+"/"+de.Name(), filepath.Join(m.backupsDir(), de.Name()), of, at)
			if at.After(newestGen[of]) {
				newestGen[of] = at
			}
		}
	}
	// A slot's generations are its earlier .prev files, each archived just
	// before the next .prev was written: that one is the newer, though the
	// file system's clock (coarser than the one naming generations) may
	// stamp it a moment earlier.
	for i, b := range out {
		if b.Of != m.rel(m.live) && b.Name == b.Of+prevSuffix && newestGen[b.Of].After(b.Time) {
			out[i].Time = newestGen[b.Of].Add(time.Nanosecond).UTC()
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// backupPath resolves a Backup's Name to its path; it accepts only the
// names Backups can list.
func (m *Manager) backupPath(name string) (string, bool) {
	if gen, ok := strings.CutPrefix(name, privateDirName+"/"+backupsDirName+"/"); ok {
		if _, _, ok := parseGeneration(gen); ok && !strings.ContainsAny(gen, `/\`) {
			return filepath.Join(m.backupsDir(), gen), true
		}
		return "", false
	}
	of, ok := strings.CutSuffix(name, prevSuffix)
	if !ok {
		return "", false
	}
	if of == m.rel(m.live) {
		return m.live + prevSuffix, true
	}
	for _, sub := range m.subs {
		if of == m.rel(m.slots[sub]) {
			return m.slots[sub] + prevSuffix, true
		}
	}
	return "", false
}

// Restore writes the backup named backup (a Backup's Name) into sub's slot,
// under the locks of every change: the slot's current content is kept as a
// backup first ("<slot path>.prev", so the login it held is never lost), the
// change is journaled, and the slot's fingerprint is captured afterwards.
// It refuses, changing nothing, an unknown sub ([ErrUnknownSubscription]), a
// name that is no backup (an error wrapping fs.ErrNotExist), a backup that is
// not a credential of the Manager's format ([ErrUnhealable]), and, unless
// [Force], a backup that belonged to another configured sub
// ([ErrIdentityDrift]): a copy of another sub's slot, a copy of the live file
// the journal names another sub for, or a login whose fingerprint another
// sub ever had (its sidecar or the journal), the login (the refresh
// token) or the identity (Codex CLI's account) another slot holds now; and,
// where the identity survives a refresh, a login of another identity than
// the one captured for sub, unless it is a copy of sub's own slot; and a
// copy of the live file whose keep record names another account than the
// one sub remembers (the account .claude.json showed when a forced switch
// kept it), unless the login is sub's by other evidence. A
// restore keeps an invalid
// mark (see [Manager.MarkInvalid]) standing unless the restored login is a
// new identity: neither a copy of sub's slot nor a login sub ever had.
// Into the active slot, with state carried (see [WithCarryState]), the
// restored login keeps the live file's account-independent state, as a
// switch's target does; the slot's whole content is its backup.
func (m *Manager) Restore(backup, sub string, opts ...SwitchOption) error {
	return m.restore(context.Background(), backup, sub, opts...)
}

// RestoreContext is [Manager.Restore] whose waits for the locks end with
// ctx: a done ctx changes nothing and returns an error wrapping ctx.Err().
func (m *Manager) RestoreContext(ctx context.Context, backup, sub string, opts ...SwitchOption) error {
	if err := notStarted(ctx); err != nil {
		return err
	}
	return m.restore(ctx, backup, sub, opts...)
}

func (m *Manager) restore(ctx context.Context, backup, sub string, opts ...SwitchOption) error {
	sc := applySwitchOptions(opts)
	if !m.knows(sub) {
		return fmt.Errorf("credslots: %s: %w", m.unknownSub(sub), ErrUnknownSubscription)
	}
	path, ok := m.backupPath(backup)
	if !ok {
		return fmt.Errorf("credslots: no backup named %q: %w", backup, fs.ErrNotExist)
	}
	// Before the first change, a first look without locks (see [Manager.SwitchTo]).
	if m.firstChange() {
		if _, _, err := m.readBackup(backup, path, sub, sc.force); err != nil {
			return err
		}
	}
	if m.locks.leasesSeen.Load() {
		// A seat to recover first (see [Manager.SwitchTo]).
		if err := m.awaitLeftSeat(ctx, sub); err != nil {
			return err
		}
	}
	mu, err := m.beginMutationContext(ctx)
	if err != nil {
		return err
	}
	defer mu.end()
	if info, held := m.heldLease(sub); held {
		// The seat's login is the live one; it comes back at the release.
		return fmt.Errorf("credslots: refusing to restore into %s: its login is %s: %w", sub, leaseNote(info), ErrLeased)
	}
	data, known, err := m.readBackup(backup, path, sub, sc.force)
	if err != nil {
		return err
	}
	if where := m.leasedLogin(m.cfg.format.parse(data).login, sub); where != "" {
		// Even forced, as for sub's own lease: the backup is a copy of a
		// login live in a seat.
		return fmt.Errorf("credslots: refusing to restore into %s: backup %s holds %s: %w", sub, backup, where, ErrLeased)
	}
	// An ended lease's seat may hold sub's newest login: it comes back
	// into the slot now, so that the restore keeps it as the slot's
	// backup, and no later recovery puts it over the login restored. The
	// backup was read first: the recovery's own backup of the slot may
	// take its name.
	if m.leasesMayExist() {
		if err := m.recoverSub(sub); err != nil {
			return err
		}
	}
	slot := m.slots[sub]
	if known {
		// An older login of sub's own: a rejection of sub stands on it.
		if err := m.keepMarkLocked(sub, m.currentFingerprint(sub), m.cfg.format.parse(data).fingerprint); err != nil {
			return err
		}
	}
	c, err := m.beginChange(mu, opRestore, sub, "", "restore "+backup, m.cfg.format.parse(data).fingerprint)
	if err != nil {
		return err
	}
	if err := c.finish(m.restoreLocked(mu, sub, data)); err != nil {
		if cur, rerr := m.cfg.fs.ReadFile(slot); rerr == nil && m.cfg.format.parse(cur).fingerprint == m.cfg.format.parse(data).fingerprint {
			// The slot holds the restored login all the same (a step
			// after its write failed): captured, it reads as sub's.
			if _, cerr := m.captureWith(sub, "", m.sidecarAfterRemove(sub), false, false); cerr != nil {
				m.cfg.logger.Warn("fingerprint capture failed after change", "sub", sub, "reason", cerr.Error())
			}
		}
		return err
	}
	if _, err := m.captureWith(sub, "", m.sidecarAfterRemove(sub), false, false); err != nil {
		m.cfg.logger.Warn("fingerprint capture failed after change", "sub", sub, "reason", err.Error())
	}
	m.cfg.logger.Info("restored", "sub", sub, "path", slot, "backup", backup)
	m.announce(mu, Change{Op: opRestore, Sub: sub, Reason: "restore " + backup})
	return nil
}

// readBackup reads the backup named backup at path and checks that it may be
// restored into sub; it only reads. known reports whether the login is one
// of sub's own: a copy of its slot, or a fingerprint it had.
func (m *Manager) readBackup(backup, path, sub string, force bool) (data []byte, known bool, err error) {
	fsys := m.cfg.fs
	// A backup is a regular file the package wrote; a symlink at a backup's
	// name is never followed.
	if fi, err := fsys.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("credslots: no backup named %q: %w", backup, fs.ErrNotExist)
	}
	data, err = fsys.ReadFile(path)
	if err != nil {
		return nil, false, fmt.Errorf("credslots: read backup %s: %w", backup, err)
	}
	cred := m.cfg.format.parse(data)
	if cred.problem != "" {
		return nil, false, fmt.Errorf("credslots: backup %s is not a %s credential: %s: %w", backup, m.cfg.format.Name(), cred.problem, ErrUnhealable)
	}
	of := m.backupOf(backup)
	owners := m.loginOwners()
	owner, why := "", ""
	switch {
	case of != "" && of != sub:
		owner, why = of, "is a copy of slot "+of
	case cred.fingerprint == "":
	case owners[cred.fingerprint] != "" && owners[cred.fingerprint] != sub:
		owner, why = owners[cred.fingerprint], "holds a login the journal records for "+owners[cred.fingerprint]
	default:
		if other := m.storedOwner(cred.fingerprint, sub); other != "" {
			owner, why = other, "holds the login captured for "+other
		} else if other := m.slotWithLogin(cred.login, sub); other != "" {
			owner, why = other, "holds the login slot "+other+" holds"
		} else if other := m.slotWithIdentity(cred.fingerprint, sub); other != "" {
			// Where the identity is not the login (Codex CLI's account_id),
			// another login of the same account is that slot's too.
			owner, why = other, "holds a login with the "+m.cfg.format.identityName()+" of slot "+other
		}
	}
	if owner != "" && !force {
		return nil, false, fmt.Errorf("credslots: backup %s %s, not %s: restore it into %s (credslots restore %s %s), or Force: %w",
			backup, why, sub, owner, backup, owner, ErrIdentityDrift)
	}
	stored, _ := m.storedFingerprint(sub)
	ident := stored
	if ident == "" && m.cfg.format.stableIdentity() {
		ident = m.currentFingerprint(sub) // none captured yet: the slot's own stands for it
	}
	if m.cfg.format.stableIdentity() && of != sub && cred.fingerprint != "" && ident != "" && cred.fingerprint != ident && !force {
		// The identity survives a refresh: a login with another one is
		// another account's, whichever sub it is.
		return nil, false, fmt.Errorf("credslots: backup %s holds a login whose %s differs from the one captured for %s: another account's; file it under a sub of its own (credslots add NAME), or Force: %w",
			backup, m.cfg.format.identityName(), sub, ErrIdentityDrift)
	}
	known = of == sub || (cred.fingerprint != "" && (owners[cred.fingerprint] == sub || stored == cred.fingerprint))
	if of == "" && !force {
		// A copy of the live file: its file says nothing of its account.
		if why := m.accountMismatch(backup, sub, cred, known); why != "" {
			return nil, false, fmt.Errorf("credslots: backup %s %s: %w", backup, why, ErrIdentityDrift)
		}
	}
	return data, known, nil
}

// backupOf returns the sub whose slot the backup named backup copies; ""
// for a copy of the live file, or a name that is no backup.
func (m *Manager) backupOf(backup string) string {
	of := ""
	if gen, ok := strings.CutPrefix(backup, privateDirName+"/"+backupsDirName+"/"); ok {
		of, _, _ = parseGeneration(gen)
	} else {
		of, _ = strings.CutSuffix(backup, prevSuffix)
	}
	for _, sub := range m.subs {
		if of == m.rel(m.slots[sub]) {
			return sub
		}
	}
	return ""
}

// loginOwners maps each identity fingerprint the journal records to the
// sub it recorded it for, the newest record winning. A journal that cannot
// be read maps nothing.
func (m *Manager) loginOwners() map[string]string {
	entries, err := m.readJournal()
	owners := map[string]string{}
	if err != nil {
		return owners
	}
	for _, e := range entries {
		if e.Fingerprint != "" && e.Sub != "" && e.Phase != phaseFailed && e.Op != opContested {
			owners[e.Fingerprint] = e.Sub
		}
	}
	return owners
}

// keptAccount returns the account (its accountUuid) .claude.json showed
// when the live file holding the login whose fingerprint is fp was last
// kept by a forced switch (see recordKept); "" when the journal has none.
func (m *Manager) keptAccount(fp string) string {
	entries, err := m.readJournal()
	if err != nil || fp == "" {
		return ""
	}
	for i := len(entries) - 1; i >= 0; i-- {
		if e := entries[i]; e.Op == opKeep && e.Fingerprint == fp && e.Account != "" {
			return e.Account
		}
	}
	return ""
}

// accountMismatch returns why restoring the copy of the live file holding
// cred into sub would file one account's login under another's sub, or "":
// the account .claude.json showed when the file was kept (see recordKept)
// is not the one sub remembers. A login that is sub's by other evidence
// (its slot holds it now, or it is one sub had: known) is no mismatch.
func (m *Manager) accountMismatch(backup, sub string, cred credential, known bool) string {
	if known || !m.cfg.format.carriesState() || cred.login != "" && m.currentLogin(sub) == cred.login {
		return ""
	}
	kept := m.keptAccount(cred.fingerprint)
	if kept == "" {
		return ""
	}
	_, mine, err := m.storedSidecar(sub)
	if err != nil || mine == nil || accountID(mine) == kept {
		return ""
	}
	advice := "restore it into a sub that remembers no account (a new one: add it to the configured subs, --subs for the command)"
	if other := m.accountIDOwner(kept, sub); other != "" {
		advice = fmt.Sprintf("restore it into %s (credslots restore %s %s)", other, backup, other)
	}
	return fmt.Sprintf("holds a login of account %s (.claude.json showed it when the live file was kept), and %s remembers account %s: %s, or Force",
		kept, sub, accountID(mine), advice)
}

// contested reports whether the journal records login (see
// credential.login) as found in two seats at once (see opContested).
func (m *Manager) contested(login string) bool {
	if login == "" {
		return false
	}
	entries, err := m.readJournal()
	if err != nil {
		return false
	}
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Op == opContested && entries[i].Fingerprint == login {
			return true
		}
	}
	return false
}

// restoreLocked backs up sub's slot and writes data into it. Into the
// active slot, whose file is the live one, the restored login takes the
// live file's account-independent state, as a switch's target does
// (section 19): MCP refresh tokens may be single-use, and the backup's
// are older.
func (m *Manager) restoreLocked(mu *mutation, sub string, data []byte) error {
	if err := mu.verify(); err != nil {
		return err
	}
	slot := m.slots[sub]
	cur, err := m.cfg.fs.ReadFile(slot)
	switch {
	case err == nil:
		if err := m.keepBackup(slot, cur); err != nil {
			return err
		}
		if m.cfg.carryState && m.cfg.format.carriesState() {
			if active, ok := m.ActiveSubscription(); ok && active == sub {
				if next, ok := carriedSlot(data, cur); ok {
					data = next
				}
			}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("credslots: read slot %s before backup: %w", slot, err)
	}
	return m.writeFile(slot, data)
}

// storedOwner returns the configured sub other than except whose stored
// fingerprint is fp; "" when none (or fp is "").
func (m *Manager) storedOwner(fp, except string) string {
	if fp == "" {
		return ""
	}
	for _, sub := range m.subs {
		if sub == except {
			continue
		}
		if stored, _ := m.storedFingerprint(sub); stored == fp {
			return sub
		}
	}
	return ""
}
