package credslots

// This file holds the owner record that Claude Code 2.1.332 and later keep
// beside their refresh lock, "<D>/.oauth_refresh.lock.owner", read the way
// Claude Code reads it and, where every field can be produced exactly as
// Claude Code computes it, written for the locks this package holds.
//
// What Claude Code does with it (read off its bundled code, traced with
// 2.1.332): while it holds .oauth_refresh.lock (and the legacy
// <realpath(D)>.lock) it writes JSON {pid, procStart, pidDomain, pidSpace,
// lockBirthtimeMs, legacyLockBirthtimeMs}. Another Claude Code that finds the
// lock held, its mtime unchanged for 7.5 s, takes it over before the 60 s
// stale time only when the record proves the holder gone: same pidDomain and
// pidSpace, the pid dead, a zombie or started at another time, the lock's
// birthtime equal to lockBirthtimeMs, and the legacy lock absent or of
// birthtime legacyLockBirthtimeMs. On release the holder removes the record
// if it still names its own pid and lock birthtime.

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gptme/credslots/internal/disk"
)

// claudeOwnerSuffix names the owner record beside the refresh lock.
const claudeOwnerSuffix = ".owner"

// maxOwnerRecord bounds the record, as Claude Code bounds its read.
const maxOwnerRecord = 4096

// ownerRecord is Claude Code's .oauth_refresh.lock.owner, field for field.
type ownerRecord struct {
	PID                   int      `json:"pid"`
	ProcStart             *string  `json:"procStart,omitempty"`
	PIDDomain             string   `json:"pidDomain"`
	PIDSpace              string   `json:"pidSpace"`
	LockBirthtimeMs       float64  `json:"lockBirthtimeMs"`
	LegacyLockBirthtimeMs *float64 `json:"legacyLockBirthtimeMs,omitempty"`
}

// parseOwnerRecord decodes a record the way Claude Code validates it: pid
// an integer, procStart at most 64 characters, pidDomain and pidSpace at
// most 512, the birthtimes positive. Anything else is no record.
func parseOwnerRecord(data []byte) (ownerRecord, bool) {
	var raw struct {
		PID                   *float64 `json:"pid"`
		ProcStart             *string  `json:"procStart"`
		PIDDomain             *string  `json:"pidDomain"`
		PIDSpace              *string  `json:"pidSpace"`
		LockBirthtimeMs       *float64 `json:"lockBirthtimeMs"`
		LegacyLockBirthtimeMs *float64 `json:"legacyLockBirthtimeMs"`
	}
	if len(data) > maxOwnerRecord || json.Unmarshal(data, &raw) != nil {
		return ownerRecord{}, false
	}
	if raw.PID == nil || *raw.PID != math.Trunc(*raw.PID) || math.Abs(*raw.PID) > math.MaxInt32 ||
		raw.PIDDomain == nil || len(*raw.PIDDomain) > 512 || raw.PIDSpace == nil || len(*raw.PIDSpace) > 512 ||
		raw.LockBirthtimeMs == nil || !(*raw.LockBirthtimeMs > 0) ||
		(raw.ProcStart != nil && len(*raw.ProcStart) > 64) ||
		(raw.LegacyLockBirthtimeMs != nil && !(*raw.LegacyLockBirthtimeMs > 0)) {
		return ownerRecord{}, false
	}
	return ownerRecord{
		PID: int(*raw.PID), ProcStart: raw.ProcStart, PIDDomain: *raw.PIDDomain, PIDSpace: *raw.PIDSpace,
		LockBirthtimeMs: *raw.LockBirthtimeMs, LegacyLockBirthtimeMs: raw.LegacyLockBirthtimeMs,
	}, true
}

// holder is what an owner record says about the process it names.
type holder int

const (
	holderUnknown holder = iota // nothing proven either way: the stale time decides
	holderAlive                 // the named process lives (or lives where this one cannot look)
	holderGone                  // proven gone, as Claude Code proves it
	holderSelf                  // this very process
)

// judge tells whether the record's process is alive, as Claude Code would
// judge it from here. A record from another pid namespace or machine names
// a process this one cannot see: it counts as alive, never as gone.
func (r ownerRecord) judge() holder {
	me, ok := selfIdentity()
	if !ok {
		// No /proc to look in: a pid that exists is alive, nothing is gone.
		if r.PID > 1 && processExists(r.PID) {
			return holderAlive
		}
		return holderUnknown
	}
	if r.PIDDomain != me.domain || r.PIDSpace != me.space {
		return holderAlive
	}
	if r.PID <= 1 || r.PID > math.MaxInt32 {
		return holderUnknown
	}
	if r.PID == os.Getpid() && (r.ProcStart == nil || *r.ProcStart == me.start) {
		return holderSelf
	}
	start, state, exists := procStat(r.PID)
	switch {
	case !exists:
		return holderGone
	case state == "Z" || state == "X":
		return holderGone
	case r.ProcStart != nil && start != "" && start != *r.ProcStart:
		return holderGone
	}
	return holderAlive
}

// ownerPathFor is the owner record of the refresh lock at lockPath.
func ownerPathFor(lockPath string) string { return lockPath + claudeOwnerSuffix }

// readOwner reads and validates the owner record at path.
func readOwner(fsys disk.FS, path string) (ownerRecord, bool) {
	data, err := fsys.ReadFile(path)
	if err != nil {
		return ownerRecord{}, false
	}
	return parseOwnerRecord(data)
}

// birthtimeMs is a directory's birthtime as Claude Code's runtime reports
// lstat's birthtimeMs: seconds times 1000 plus nanoseconds over 1e6, in
// float64. ok is false where the file system or platform gives none.
func birthtimeMs(path string) (float64, bool) {
	sec, nsec, ok := birthtime(path)
	if !ok || (sec == 0 && nsec == 0) {
		return 0, false
	}
	return float64(sec)*1000 + float64(nsec)/1e6, true
}

// ownRecord builds this process's owner record for the refresh lock at
// lockPath (and the legacy lock at legacyPath, "" when not held), with
// every field as Claude Code computes it. ok is false when any field
// cannot be produced exactly: then no record is written.
func ownRecord(lockPath, legacyPath string) (ownerRecord, bool) {
	me, ok := selfIdentity()
	if !ok || me.start == "" {
		return ownerRecord{}, false
	}
	bt, ok := birthtimeMs(lockPath)
	if !ok {
		return ownerRecord{}, false
	}
	start := me.start
	r := ownerRecord{PID: os.Getpid(), ProcStart: &start, PIDDomain: me.domain, PIDSpace: me.space, LockBirthtimeMs: bt}
	if legacyPath != "" {
		lbt, ok := birthtimeMs(legacyPath)
		if !ok {
			return ownerRecord{}, false
		}
		r.LegacyLockBirthtimeMs = &lbt
	}
	return r, true
}

// mine reports whether r is this process's record for a lock of birthtime bt.
func (r ownerRecord) mine(bt float64) bool {
	return r.judge() == holderSelf && r.LockBirthtimeMs == bt
}

// identity is what Claude Code records of the process that holds a lock.
type identity struct {
	start  string // field 22 of /proc/<pid>/stat, as a decimal string
	domain string // "linux:<machine-id>:<readlink /proc/self/ns/pid>"
	space  string // "<hostname>#<readlink /proc/self/ns/pid>"
}

// procStatFields splits the text of /proc/<pid>/stat after the command
// name, as Claude Code does (the name may hold spaces and parentheses).
func procStatFields(stat string) ([]string, bool) {
	i := lastIndexByte(stat, ')')
	if i < 0 || i+2 > len(stat) {
		return nil, false
	}
	return splitSpaces(stat[i+2:]), true
}

func lastIndexByte(s string, c byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// splitSpaces splits on single spaces, keeping empty fields, like
// JavaScript's split(" ").
func splitSpaces(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// pidString formats a pid for messages.
func pidString(pid int) string { return strconv.Itoa(pid) }

// LockHolder is what a journal intent record ([JournalEntry.Holder]) says
// of the process making the change and the CLI lock directories it holds,
// so that a later change can prove the directories a killed change left
// its own and take them back at once. It is recorded only where birthtimes
// are known (Linux).
type LockHolder struct {
	PID       int        `json:"pid"`
	ProcStart string     `json:"proc_start"` // field 22 of /proc/<pid>/stat
	Locks     []HeldLock `json:"locks"`
}

// HeldLock identifies one lock directory a change held: a directory that
// was removed and made again has another birthtime.
type HeldLock struct {
	Path      string `json:"path"`
	Inode     uint64 `json:"inode"`
	BirthSec  int64  `json:"birth_sec"`
	BirthNsec int64  `json:"birth_nsec"`
}

// heldIdentity is a lock directory's inode and birthtime; ok is false where
// either is unknown.
func heldIdentity(fsys disk.FS, path string) (HeldLock, bool) {
	fi, err := fsys.Lstat(path)
	if err != nil || !fi.IsDir() {
		return HeldLock{}, false
	}
	ino, ok := inodeOf(fi)
	if !ok {
		return HeldLock{}, false
	}
	sec, nsec, ok := birthtime(path)
	if !ok || (sec == 0 && nsec == 0) {
		return HeldLock{}, false
	}
	return HeldLock{Path: filepath.Clean(path), Inode: ino, BirthSec: sec, BirthNsec: nsec}, true
}
