package credslots

// This file holds the journal: one JSON object a line in
// "<creds dir>/.credslots/journal.jsonl", appended under the package's lock,
// so that the package knows whose token the live path holds.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/gptme/credslots/internal/journal"
)

const (
	// journalName is the journal's file name in the private directory.
	journalName = "journal.jsonl"
	// oldSwitchLog is the switch log that earlier versions of the command
	// kept in the creds dir; it is read once and migrated into the journal.
	oldSwitchLog = ".credslots-switches.jsonl"
	// migratedSwitchLog is where the old switch log goes once migrated.
	migratedSwitchLog = "switches.jsonl.migrated"
	// journalMaxLine bounds one record; a longer reason is shortened.
	journalMaxLine = 4 << 10
	// journalRotateAt is the size past which older records are dropped,
	// keeping about journalKeep bytes of the newest ones and always the last
	// completed switch or heal.
	journalRotateAt = 256 << 10
	journalKeep     = 128 << 10
)

// Journal operations and phases.
const (
	opSwitch  = "switch"
	opHeal    = "heal"
	opAdopt   = "adopt"
	opRestore = "restore"
	opCapture = "capture"
	opRest    = "rest"
	opInvalid = "invalid"
	// opFlip records a symlink flip that no Manager made (an operator's
	// ln -sfn), as watch observed it.
	opFlip = "flip"
	// opKeep records whose login a kept backup of the live file holds.
	opKeep = "keep"
	// opContested records a login found in two held leases' seats at once,
	// which no record names: which seat's is the original, and which a
	// copy, cannot be told, so it is written back into neither slot. Its
	// fingerprint is the login's (see credential.login).
	opContested = "contested"

	phaseIntent = "intent"
	phaseDone   = "done"
	phaseFailed = "failed"
)

// JournalEntry is one record of the journal that a Manager keeps of every
// change it makes. A switch, heal or restore writes an "intent" record before
// it changes a file and a "done" or "failed" record after; a capture writes
// one "done" record. Records never hold token material.
type JournalEntry struct {
	Time time.Time `json:"time"` // the Manager's clock, UTC
	// Op is "switch", "heal", "adopt", "restore", "capture", "rest",
	// "invalid", "remove", "flip" (a symlink flip no Manager made, observed
	// by [Manager.RecordFlip]), "keep" (whose login a kept backup of the
	// live file holds), a lease's "lease", "sync", "release" or "recover",
	// or "contested" (a login found in two held leases' seats at once,
	// which neither slot is given; Fingerprint is its refresh token's).
	Op string `json:"op"`
	// Phase is "intent", "done" or "failed".
	Phase string `json:"phase"`
	// ID pairs an intent with its done or failed record.
	ID string `json:"id,omitempty"`
	// Sub is the sub the record is about; on a keep record "" when the
	// journal could not tell whose login was kept (Account says whose
	// account .claude.json showed).
	Sub    string `json:"sub"`
	From   string `json:"from,omitempty"` // the sub whose slot the live path held before
	Reason string `json:"reason,omitempty"`
	// LiveMtime is, on a done switch or heal, the modification time of the
	// symlink it placed: a live file written later is newer than this.
	LiveMtime *time.Time `json:"live_mtime,omitempty"`
	// Error says why a change failed.
	Error string `json:"error,omitempty"`
	// Until is, on a rest, when the sub may be used again.
	Until *time.Time `json:"until,omitempty"`
	// Fingerprint is the identity fingerprint the record is about: on an
	// invalid record the login the server rejected; on a switch, heal,
	// adopt, restore or capture the login the slot holds afterwards; on a
	// keep record the login kept. It is a sha256, never token material.
	Fingerprint string `json:"fingerprint,omitempty"`
	// CLILocks is set on a change made under the CLI's own locks: no CLI
	// write can straddle it, so a live file whose mtime equals the placed
	// symlink's was written after it.
	CLILocks bool `json:"cli_locks,omitempty"`
	// Kept names, on a keep record, the backup that holds the login.
	Kept string `json:"kept,omitempty"`
	// Account is, on a done switch, heal, adopt or flip, the account
	// (accountUuid) .claude.json showed right after it: a later change of
	// that account is a login, not a refresh. On a keep record it is the
	// account .claude.json showed when the live file was kept.
	Account string `json:"account,omitempty"`
	// Seat is, on a lease, release, sync or recover record, the seat
	// directory the sub's login was handed to.
	Seat string `json:"seat,omitempty"`
	// Migrated marks a record read from the command's old switch log.
	Migrated bool `json:"migrated,omitempty"`
	// Holder is, on an intent, the process making the change and the CLI
	// lock directories it holds (inode and birthtime): a later change
	// takes back at once those a killed change left.
	Holder *LockHolder `json:"holder,omitempty"`
}

// Journal returns the journal's records, oldest first. Before the first
// change, an old switch log of the credslots command is read instead.
// Malformed or over-long lines are skipped (and logged at Warn).
func (m *Manager) Journal() ([]JournalEntry, error) {
	return m.readJournal()
}

// journalPath is the journal's path.
// m.private is clean (New joins it), so a separator and the name make
// what filepath.Join would, without cleaning it again.
func (m *Manager) journalPath() string { return m.private + string(filepath.Separator) + journalName }

// readJournal parses the journal, or the old switch log when there is no
// journal yet.
func (m *Manager) readJournal() ([]JournalEntry, error) {
	data, err := m.journalBytes()
	if errors.Is(err, fs.ErrNotExist) {
		return m.readOldSwitchLog()
	}
	if err != nil {
		return nil, fmt.Errorf("credslots: read journal: %w", err)
	}
	return m.parseJournal(data), nil
}

// journalBytes reads the journal. One grown past the reader's bound (its
// rotation failed, or another writer grew it) is read from its tail, the
// newest records, from the first whole line on: never fatal.
func (m *Manager) journalBytes() ([]byte, error) {
	data, tailed, err := journal.Read(m.cfg.fs, m.journalPath())
	if tailed {
		m.cfg.logger.Warn("journal past the reader's bound: reading its newest records", "path", m.journalPath(), "limit", disk.MaxFileSize)
	}
	return data, err
}

// parseJournal decodes journal lines, skipping what does not parse.
func (m *Manager) parseJournal(data []byte) []JournalEntry {
	entries := []JournalEntry{}
	journal.Lines(data, func(n int, line []byte) {
		e, ok := parseJournalLine(line)
		if !ok {
			m.cfg.logger.Warn("skipped a malformed journal line", "path", m.journalPath(), "line", n)
			return
		}
		if e.Holder != nil {
			for i := range e.Holder.Locks {
				e.Holder.Locks[i].Path = resolveLockPath(m.dir, e.Holder.Locks[i].Path)
			}
		}
		entries = append(entries, e)
	})
	return entries
}

// parseJournalLine decodes one journal record; it refuses over-long lines
// and records without an op, a phase or a sub.
func parseJournalLine(line []byte) (JournalEntry, bool) {
	var e JournalEntry
	if len(line) > journalMaxLine || json.Unmarshal(line, &e) != nil {
		return JournalEntry{}, false
	}
	if e.Op == "" || e.Phase == "" || e.Sub == "" && (e.Op != opKeep || e.Account == "") {
		return JournalEntry{}, false
	}
	return e, true
}

// oldLogEntry is one line of the command's old switch log.
type oldLogEntry struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"`
	Sub    string    `json:"sub"`
	Reason string    `json:"reason"`
}

// readOldSwitchLog converts the command's old switch log into done records.
func (m *Manager) readOldSwitchLog() ([]JournalEntry, error) {
	data, err := m.cfg.fs.ReadFile(filepath.Join(m.dir, oldSwitchLog))
	if errors.Is(err, fs.ErrNotExist) {
		return []JournalEntry{}, nil
	}
	if errors.Is(err, ErrTooLarge) {
		// Never fatal: without its records [Manager.HealDrift] refuses until a
		// change is recorded, and the file is moved aside on migration.
		m.cfg.logger.Warn("old switch log too large to read; not migrated", "path", oldSwitchLog)
		return []JournalEntry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("credslots: read old switch log: %w", err)
	}
	entries := []JournalEntry{}
	for n, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var o oldLogEntry
		if len(line) > journalMaxLine || json.Unmarshal(line, &o) != nil || o.Sub == "" ||
			(o.Action != opSwitch && o.Action != opHeal) {
			m.cfg.logger.Warn("skipped a malformed switch-log line", "path", oldSwitchLog, "line", n+1)
			continue
		}
		entries = append(entries, JournalEntry{
			Time: o.Time.UTC(), Op: o.Action, Phase: phaseDone, Sub: o.Sub, Reason: o.Reason, Migrated: true,
		})
	}
	return entries, nil
}

// newChangeID returns a random id pairing an intent with its outcome.
func newChangeID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// record appends e to the journal under the lock the caller holds; an
// intent is fsynced before record returns.
// The first record migrates the old switch log; a journal grown past
// journalRotateAt drops its oldest records after the append (the append
// reports the size: no stat before it).
func (m *Manager) record(e JournalEntry) error { return m.recordTo(e, nil) }

// heldJournal is the journal a change keeps open from its intent to its
// outcome (see recordTo).
type heldJournal struct {
	keep bool            // open it at the next record and keep it
	buf  [1024]byte      // the records' encoding, in the change's memory
	f    disk.RecordFile // nil: not open (not yet, or closed)
	size int64           // the journal's size after the last record through f
}

// close closes the kept journal; records that follow open it by its name.
func (j *heldJournal) close() {
	if j == nil {
		return
	}
	j.keep = false
	if j.f != nil {
		_ = j.f.Close()
		j.f = nil
	}
}

// recordTo is record through j, when not nil: the first record opens the
// journal and keeps it open in j, and the ones after it are each one write
// through it, with no open, fstat, look at the last byte or close. That is
// right because the caller holds the package's lock from the first record
// to the last, under which alone the journal is appended to or rotated, so
// nobody else appended meanwhile, and every record written here ends with
// a newline: the journal still ends where j.size says, on a whole line. A
// rotation replaces the file: j is closed before it, and the records after
// it go by the journal's name again.
func (m *Manager) recordTo(e JournalEntry, j *heldJournal) error {
	e.Time = e.Time.UTC()
	var line []byte
	var err error
	if j != nil {
		line, err = encodeJournalLineTo(j.buf[:0], e) // the change's own buffer
	} else {
		var buf [1024]byte
		line, err = encodeJournalLineTo(buf[:0], e)
	}
	if err != nil {
		return err
	}
	// Only an intent must be durable before the change it announces; an
	// outcome lost to a crash leaves the intent alone, which makes
	// [Manager.HealDrift] refuse rather than guess.
	durable := e.Phase == phaseIntent
	var size int64
	created := false
	switch {
	case j != nil && j.f != nil:
		if err := j.f.Append(line, durable); err != nil {
			j.close()
			return fmt.Errorf("credslots: append to journal: %w", err)
		}
		j.size += int64(len(line))
		size = j.size
	default:
		path := m.journalPath()
		keep := j != nil && j.keep
		var f disk.RecordFile
		appendTo := func(create bool) (int64, error) {
			if keep {
				var n int64
				n, f, err = journal.Open(m.cfg.fs, path, line, durable, create)
				return n, err
			}
			return journal.Append(m.cfg.fs, path, line, durable, create)
		}
		size, err = appendTo(false)
		if errors.Is(err, fs.ErrNotExist) {
			if err := m.migrateOldSwitchLog(); err != nil {
				return err
			}
			size, err = appendTo(true)
			created = true
		}
		if errors.Is(err, disk.ErrNotRegular) {
			return fmt.Errorf("credslots: journal %s is not a regular file", path)
		}
		if err != nil {
			return fmt.Errorf("credslots: append to journal: %w", err)
		}
		if keep {
			j.keep, j.f, j.size = false, f, size
		}
	}
	if created {
		m.own(m.journalPath()) // just created (or written by the migration)
	}
	if size > journalRotateAt {
		// The record is in the journal (and durable when it must be); a
		// failed rotation leaves a longer journal, rotated next time. The
		// rotation replaces the file: a kept one is closed first.
		j.close()
		if err := m.rotateJournal(); err != nil {
			m.cfg.logger.Warn("journal rotation failed", "path", m.journalPath(), "reason", err.Error())
		}
	}
	return nil
}

// encodeJournalLine encodes e as one line no longer than journalMaxLine,
// shortening the reason and error if needed.
func encodeJournalLine(e JournalEntry) ([]byte, error) {
	return encodeJournalLineTo(nil, e)
}

// encodeJournalLineTo is encodeJournalLine appending to b.
func encodeJournalLineTo(b []byte, e JournalEntry) ([]byte, error) {
	for {
		line, err := appendJournalLine(b[:0], &e)
		if err != nil {
			return nil, fmt.Errorf("credslots: encode journal record: %w", err)
		}
		if len(line) < journalMaxLine {
			return append(line, '\n'), nil
		}
		b = line
		if e.Holder != nil {
			// Very long lock paths: the leftovers then wait for their
			// stale time, as without a record.
			e.Holder = nil
			continue
		}
		if e.Reason == "" && e.Error == "" {
			return nil, errors.New("credslots: journal record too long")
		}
		e.Reason = shorten(e.Reason)
		e.Error = shorten(e.Error)
	}
}

// appendJournalLine appends e as encoding/json would marshal it (field
// order, names and omitempty of the struct tags), without reflection; the
// tests hold the two to the same bytes.
func appendJournalLine(b []byte, e *JournalEntry) ([]byte, error) {
	var err error
	b = append(b, '{')
	b = journal.AppendKey(b, "time")
	if b, err = journal.AppendTime(b, e.Time); err != nil {
		return nil, err
	}
	str := func(key, v string, omit bool) {
		if v != "" || !omit {
			b = journal.AppendString(journal.AppendKey(b, key), v)
		}
	}
	tm := func(key string, t *time.Time) {
		if t != nil && err == nil {
			b, err = journal.AppendTime(journal.AppendKey(b, key), *t)
		}
	}
	flag := func(key string, v bool) {
		if v {
			b = append(journal.AppendKey(b, key), "true"...)
		}
	}
	str("op", e.Op, false)
	str("phase", e.Phase, false)
	str("id", e.ID, true)
	str("sub", e.Sub, false)
	str("from", e.From, true)
	str("reason", e.Reason, true)
	tm("live_mtime", e.LiveMtime)
	str("error", e.Error, true)
	tm("until", e.Until)
	str("fingerprint", e.Fingerprint, true)
	flag("cli_locks", e.CLILocks)
	str("kept", e.Kept, true)
	str("account", e.Account, true)
	str("seat", e.Seat, true)
	flag("migrated", e.Migrated)
	if err != nil {
		return nil, err
	}
	if h := e.Holder; h != nil {
		b = append(journal.AppendKey(b, "holder"), '{')
		b = strconv.AppendInt(journal.AppendKey(b, "pid"), int64(h.PID), 10)
		b = journal.AppendString(journal.AppendKey(b, "proc_start"), h.ProcStart)
		b = journal.AppendKey(b, "locks")
		if h.Locks == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '[')
			for i, l := range h.Locks {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, '{')
				b = journal.AppendString(journal.AppendKey(b, "path"), l.Path)
				b = strconv.AppendUint(journal.AppendKey(b, "inode"), l.Inode, 10)
				b = strconv.AppendInt(journal.AppendKey(b, "birth_sec"), l.BirthSec, 10)
				b = strconv.AppendInt(journal.AppendKey(b, "birth_nsec"), l.BirthNsec, 10)
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// shorten halves s at a rune boundary.
func shorten(s string) string {
	r := []rune(s)
	return string(r[:len(r)/2])
}

// migrateOldSwitchLog writes the old switch log's entries as the journal's
// first records and moves the old log into the private directory.
func (m *Manager) migrateOldSwitchLog() error {
	old := filepath.Join(m.dir, oldSwitchLog)
	if _, err := m.cfg.fs.Lstat(old); err != nil {
		return nil // nothing to migrate
	}
	entries, err := m.readOldSwitchLog()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, e := range entries {
		line, err := encodeJournalLine(e)
		if err != nil {
			return err
		}
		buf.Write(line)
	}
	if err := m.writeFile(m.journalPath(), buf.Bytes()); err != nil {
		return err
	}
	if err := m.cfg.fs.Rename(old, filepath.Join(m.private, migratedSwitchLog)); err != nil {
		return fmt.Errorf("credslots: move migrated switch log: %w", err)
	}
	return syncDirOf(m.cfg.fs, old)
}

// rotateJournal rewrites the journal with its newest records, about
// journalKeep bytes, and always the intent and done records of the last
// completed switch or heal, and the newest keptRecords keep records that
// name a sub or an account (a kept live file's backups outlive many
// rotations, and its record is what says whose login it holds; see
// recordKept). A
// journal past the reader's bound is rotated from its tail. Only the
// newest records are decoded, back to the last completed change, and of
// the older lines only those that name its id or are keep records: every
// record of a change carries its id as written here.
func (m *Manager) rotateJournal() error {
	data, err := m.journalBytes()
	if err != nil {
		return fmt.Errorf("credslots: rotate journal: %w", err)
	}
	var id []byte
	done, why := lastCompletedChange(data)
	if why == "" && done.ID != "" {
		id = journal.AppendString(nil, done.ID)
	}
	// The oldest keep records past keptRecords go, first.
	nKept := countKeptRecords(data)
	dropKept := nKept - keptRecords
	keep := func(line []byte) bool {
		kept := nKept > 0 && bytes.Contains(line, keepMarker)
		if !kept && (why != "" || id != nil && !bytes.Contains(line, id)) {
			return false // no record of that change: not decoded
		}
		e, ok := parseJournalLine(bytes.TrimSpace(line))
		switch {
		case !ok:
			return false
		case e.Op == opKeep:
			if !keptRecordNames(e) {
				return false
			}
			dropKept--
			return dropKept < 0
		}
		return why == "" && sameChange(e, done)
	}
	return m.writeFile(m.journalPath(), journal.Keep(data, journalKeep, keep))
}

// keptRecords is how many keep records naming a sub or an account a
// rotation keeps, beside the newest records: more than the backup
// generations of the live file kept by default.
const keptRecords = 64

// keptRecordNames reports whether keep record e says whose login the kept
// file holds: the sub (restore's check of another sub's login needs it)
// or the account .claude.json showed. One naming neither says nothing.
func keptRecordNames(e JournalEntry) bool { return e.Sub != "" || e.Account != "" }

// countKeptRecords counts the keep records in data that a rotation keeps
// (see keptRecordNames), decoding only the lines that are keep records.
func countKeptRecords(data []byte) int {
	n := 0
	for rest := data; ; {
		i := bytes.Index(rest, keepMarker)
		if i < 0 {
			return n
		}
		start := bytes.LastIndexByte(rest[:i], '\n') + 1
		end := len(rest)
		if j := bytes.IndexByte(rest[i:], '\n'); j >= 0 {
			end = i + j
		}
		if e, ok := parseJournalLine(bytes.TrimSpace(rest[start:end])); ok && e.Op == opKeep && keptRecordNames(e) {
			n++
		}
		rest = rest[end:]
	}
}

// keepMarker is how a keep record's op is written (see encodeJournalLine).
var keepMarker = []byte(`"op":"keep"`)

// lastCompletedChange is the newest completed switch or heal of the
// journal's bytes, decoding its lines from the newest back only as far as
// it must. Unlike lastLiveChange it looks past an intent without an
// outcome: the journal rotates right after a record, which may be the
// intent of the change in progress, and should that change fail, the one
// before it decides what the live path holds.
func lastCompletedChange(data []byte) (JournalEntry, string) {
	var (
		done  JournalEntry
		why   string
		found bool
		scan  = liveScan{pastPending: true}
	)
	journal.Backward(data, func(line []byte) bool {
		e, ok := parseJournalLine(line)
		if !ok {
			return true
		}
		done, why, found = scan.step(e)
		return !found
	})
	if !found {
		return JournalEntry{}, "no completed switch or heal in the journal"
	}
	return done, why
}

// sameChange reports whether e belongs to the change whose done record is d.
func sameChange(e, d JournalEntry) bool {
	if d.ID != "" {
		return e.ID == d.ID
	}
	return e.Migrated && e.Sub == d.Sub && e.Time.Equal(d.Time)
}

// lastLiveChange finds the newest switch or heal whose outcome decides what
// the live path holds. It returns that change's done record, or why the
// journal cannot tell: no completed change, or a newest change whose intent
// has no done or failed record (the process stopped in between).
func lastLiveChange(entries []JournalEntry) (JournalEntry, string) {
	var scan liveScan
	for i := len(entries) - 1; i >= 0; i-- {
		if done, why, found := scan.step(entries[i]); found {
			return done, why
		}
	}
	return JournalEntry{}, "no completed switch or heal in the journal"
}

// liveScan is lastLiveChange's state, fed the records newest first.
type liveScan struct {
	done   map[string]JournalEntry
	failed map[string]bool
	// pastPending looks past an intent without an outcome, as past a
	// failed one, for the newest completed change (the rotation's rule).
	pastPending bool
}

// step takes the next older record; found is true once the answer is known.
func (s *liveScan) step(e JournalEntry) (done JournalEntry, why string, found bool) {
	if !isLiveChange(e.Op) {
		return JournalEntry{}, "", false
	}
	switch e.Phase {
	case phaseDone:
		if e.ID == "" || e.Op == opFlip {
			return e, "", true // migrated from the old switch log, or observed: no intent
		}
		if s.done == nil {
			s.done = map[string]JournalEntry{}
		}
		if _, seen := s.done[e.ID]; !seen {
			s.done[e.ID] = e
		}
	case phaseFailed:
		if s.failed == nil {
			s.failed = map[string]bool{}
		}
		s.failed[e.ID] = true
	case phaseIntent:
		if d, ok := s.done[e.ID]; ok {
			return d, "", true
		}
		if s.failed[e.ID] || s.pastPending {
			return JournalEntry{}, "", false
		}
		return JournalEntry{}, fmt.Sprintf("the last %s (to %s at %s) has no done record: it may or may not have changed the live path",
			e.Op, e.Sub, formatTime(e.Time)), true
	}
	return JournalEntry{}, "", false
}

// isLiveChange reports whether records of op decide what the live path
// holds: a switch, heal or adopt a Manager made, or a flip one observed.
func isLiveChange(op string) bool {
	return op == opSwitch || op == opHeal || op == opAdopt || op == opFlip
}

// pendingChange returns the newest live change when it is an intent with no
// done or failed record (its process stopped in between).
func pendingChange(entries []JournalEntry) (JournalEntry, bool) {
	outcome := map[string]string{}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if !isLiveChange(e.Op) {
			continue
		}
		switch {
		case e.Phase == phaseDone && (e.ID == "" || e.Op == opFlip):
			return JournalEntry{}, false // migrated or observed: complete
		case e.Phase != phaseIntent:
			if _, seen := outcome[e.ID]; !seen {
				outcome[e.ID] = e.Phase
			}
		case outcome[e.ID] == phaseDone:
			return JournalEntry{}, false // the newest change completed
		case outcome[e.ID] == phaseFailed:
			continue // changed nothing: look further back
		default:
			return e, true
		}
	}
	return JournalEntry{}, false
}

// LastActive returns the sub whose switch or heal, made by any Manager or by
// the credslots command on this creds dir, completed last, as the journal
// records it. It reports false when the journal records none, or when the
// newest change's outcome is unknown because its process stopped between
// intent and done: then the live path may hold either sub's token.
func (m *Manager) LastActive() (string, bool) {
	entries, err := m.readJournal()
	if err != nil {
		return "", false
	}
	done, why := lastLiveChange(entries)
	if why != "" {
		return "", false
	}
	return done.Sub, true
}

// change is a switch, heal or restore in progress, as the journal sees it.
type change struct {
	m     *Manager
	entry JournalEntry
	// journal is the journal kept open from the intent to the outcome.
	journal *heldJournal
	// account is the oauthAccount .claude.json shows after the change,
	// when the change knows it; recorded on its done record.
	account []byte
}

// beginChange writes the intent record of a change made under mu, which
// leaves sub's slot holding the login whose fingerprint is fp.
func (m *Manager) beginChange(mu *mutation, op, sub, from, reason, fp string) (*change, error) {
	m.sweepIfDue()
	e := JournalEntry{Time: m.cfg.now(), Op: op, Phase: phaseIntent, ID: newChangeID(), Sub: sub, From: from, Reason: reason,
		Fingerprint: fp, CLILocks: len(mu.dirs) > 0, Holder: m.held.Load()}
	j := &heldJournal{keep: true}
	if err := m.recordTo(e, j); err != nil {
		return nil, err
	}
	// Closed by finish; should the change end without one, with its locks.
	mu.release = append(mu.release, j.close)
	return &change{m: m, entry: e, journal: j}, nil
}

// record appends e to the journal through the one the change keeps open.
func (c *change) record(e JournalEntry) error { return c.m.recordTo(e, c.journal) }

// finish writes the change's done record, or its failed record when err is
// not nil, and returns err. An error met after the live path already changed
// (a failed directory sync) still makes a done record, carrying the error:
// the journal must say what the live path holds. A done switch or heal
// records the placed symlink's mtime. Failing to write the outcome is
// logged: the intent without an outcome makes [Manager.HealDrift] refuse rather than
// guess.
func (c *change) finish(err error) error {
	e := c.entry
	e.Time = c.m.cfg.now()
	e.Phase = phaseDone
	// Only an intent's holder matters (see leftoverLocks): the outcome
	// does not repeat it.
	e.Holder = nil
	var changed *liveChangedError
	if err != nil {
		e.Error = err.Error()
		if !errors.As(err, &changed) {
			e.Phase = phaseFailed
		}
	}
	if e.Phase == phaseDone && c.account != nil {
		e.Account = accountID(c.account)
	}
	if e.Phase == phaseDone && isLiveChange(e.Op) && e.LiveMtime == nil {
		if fi, lerr := c.m.cfg.fs.Lstat(c.m.live); lerr == nil {
			mt := fi.ModTime().UTC()
			e.LiveMtime = &mt
		}
	}
	rerr := c.record(e)
	c.journal.close()
	if rerr != nil {
		c.m.cfg.logger.Warn("journal record failed", "sub", e.Sub, "op", e.Op, "phase", e.Phase, "reason", rerr.Error())
	}
	return err
}
