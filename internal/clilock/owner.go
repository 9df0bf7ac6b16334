package clilock

// The owner record that Claude Code 2.1.332 and later keep beside their
// refresh lock, "<D>/.oauth_refresh.lock.owner", read the way Claude Code
// reads it and, where every field can be produced exactly as Claude Code
// computes it, written for the locks credslots holds.
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
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"strconv"

	"github.com/gptme/credslots/internal/disk"
	"github.com/gptme/credslots/internal/journal"
)

// OwnerSuffix names the owner record beside the refresh lock.
const OwnerSuffix = ".owner"

// maxOwnerRecord bounds the record, as Claude Code bounds its read.
const maxOwnerRecord = 4096

// selfPID is this process's pid, read once: a Go process never forks
// without exec, so it cannot change.
var selfPID = os.Getpid()

// PID is this process's pid, without a system call.
func PID() int { return selfPID }

// OwnerPath is the owner record of the refresh lock at lockPath.
func OwnerPath(lockPath string) string { return lockPath + OwnerSuffix }

// Owner is Claude Code's .oauth_refresh.lock.owner, field for field.
type Owner struct {
	PID                   int      `json:"pid"`
	ProcStart             *string  `json:"procStart,omitempty"`
	PIDDomain             string   `json:"pidDomain"`
	PIDSpace              string   `json:"pidSpace"`
	LockBirthtimeMs       float64  `json:"lockBirthtimeMs"`
	LegacyLockBirthtimeMs *float64 `json:"legacyLockBirthtimeMs,omitempty"`
}

// ParseOwner decodes a record the way Claude Code validates it: pid an
// integer, procStart at most 64 characters, pidDomain and pidSpace at most
// 512, the birthtimes positive. Its keys are matched exactly, as
// JavaScript's are (a "PID" is no pid), and an optional field that is
// null makes no record, as Claude Code's schema rejects it. Anything else
// is no record.
func ParseOwner(data []byte) (Owner, bool) {
	var fields map[string]json.RawMessage
	if len(data) > maxOwnerRecord || json.Unmarshal(data, &fields) != nil || fields == nil {
		return Owner{}, false
	}
	bad := false
	num := func(key string) *float64 { return ownerField[float64](fields, key, &bad) }
	str := func(key string) *string { return ownerField[string](fields, key, &bad) }
	pid, procStart, pidDomain, pidSpace := num("pid"), str("procStart"), str("pidDomain"), str("pidSpace")
	lockBirth, legacyBirth := num("lockBirthtimeMs"), num("legacyLockBirthtimeMs")
	if bad || pid == nil || *pid != math.Trunc(*pid) || math.Abs(*pid) > math.MaxInt32 ||
		pidDomain == nil || len(*pidDomain) > 512 || pidSpace == nil || len(*pidSpace) > 512 ||
		lockBirth == nil || !(*lockBirth > 0) ||
		(procStart != nil && len(*procStart) > 64) ||
		(legacyBirth != nil && !(*legacyBirth > 0)) {
		return Owner{}, false
	}
	return Owner{
		PID: int(*pid), ProcStart: procStart, PIDDomain: *pidDomain, PIDSpace: *pidSpace,
		LockBirthtimeMs: *lockBirth, LegacyLockBirthtimeMs: legacyBirth,
	}, true
}

// ownerField decodes the record's member key as a T: nil when it is
// absent; nil, and *bad set, when it is null or not a T.
func ownerField[T any](fields map[string]json.RawMessage, key string, bad *bool) *T {
	v, ok := fields[key]
	if !ok {
		return nil
	}
	var t T
	if bytes.Equal(bytes.TrimSpace(v), []byte("null")) || json.Unmarshal(v, &t) != nil {
		*bad = true
		return nil
	}
	return &t
}

// ReadOwner reads and validates the owner record at path.
func ReadOwner(fsys disk.FS, path string) (Owner, bool) {
	data, err := fsys.ReadFile(path)
	if err != nil {
		return Owner{}, false
	}
	return ParseOwner(data)
}

// Holder is what an owner record says about the process it names.
type Holder int

const (
	HolderUnknown Holder = iota // nothing proven either way: the stale time decides
	HolderAlive                 // the named process lives (or lives where this one cannot look)
	HolderGone                  // proven gone, as Claude Code proves it
	HolderSelf                  // this very process
)

// Judge tells whether the record's process is alive, as Claude Code would
// judge it from here. A record from another pid namespace or machine names
// a process this one cannot see: it counts as alive, never as gone. Nor is
// any holder gone where Claude Code distrusts the pid view (see
// pidViewTrusted): the stale time decides there.
func (r Owner) Judge() Holder {
	me, ok := Self()
	if !ok {
		// No /proc to look in: a pid that exists is alive, nothing is gone.
		if r.PID > 1 && ProcessExists(r.PID) {
			return HolderAlive
		}
		return HolderUnknown
	}
	if r.PIDDomain != me.Domain || r.PIDSpace != me.Space {
		return HolderAlive
	}
	if r.PID <= 1 || r.PID > math.MaxInt32 {
		return HolderUnknown
	}
	if r.PID == selfPID && (r.ProcStart == nil || *r.ProcStart == me.Start) {
		return HolderSelf
	}
	start, state, exists := ProcStat(r.PID)
	gone := !exists || state == "Z" || state == "X" || r.ProcStart != nil && start != "" && start != *r.ProcStart
	switch {
	case !gone:
		return HolderAlive
	case !pidViewTrusted():
		return HolderUnknown // as Claude Code: pid_view_untrusted
	}
	return HolderGone
}

// Mine reports whether r is this process's record for a lock of birth time bt.
func (r Owner) Mine(bt float64) bool {
	return r.Judge() == HolderSelf && r.LockBirthtimeMs == bt
}

// OwnRecord builds this process's owner record for the held refresh lock
// (and the legacy lock, nil when not held), with every field as Claude
// Code computes it. ok is false when any field cannot be produced exactly.
func OwnRecord(refresh, legacy *Dir) (Owner, bool) {
	me, ok := Self()
	if !ok || me.Start == "" {
		return Owner{}, false
	}
	bt, ok := refresh.Stat().BirthMs()
	if !ok {
		return Owner{}, false
	}
	start := me.Start
	r := Owner{PID: selfPID, ProcStart: &start, PIDDomain: me.Domain, PIDSpace: me.Space, LockBirthtimeMs: bt}
	if legacy != nil {
		lbt, ok := legacy.Stat().BirthMs()
		if !ok {
			return Owner{}, false
		}
		r.LegacyLockBirthtimeMs = &lbt
	}
	return r, true
}

// WriteOwner writes this process's owner record at path for the held
// refresh lock (and legacy, nil when not held), the way Claude Code writes
// its own: one write to a new file (0600, never through a symlink), not
// fsynced. A reader sees nothing or all of it; a record lost to a crash
// only means Claude Code waits for the stale time. It writes none (remove
// nil, err nil) when a field cannot be produced exactly or when a record
// is there already: a record that is not ours is never rewritten.
//
// remove takes the record away again if it is still this process's, as
// reading it back shows: a record that is not ours is never removed.
// Ours is the very bytes written: they name this pid, its start time and
// the lock's birthtime, which no other process writes, so a record equal
// to them is the one Mine would accept, found without decoding it; one
// that differs in any byte is left alone.
func WriteOwner(fsys disk.FS, path string, refresh, legacy *Dir) (remove func(), err error) {
	rec, ok := OwnRecord(refresh, legacy)
	if !ok {
		return nil, nil
	}
	data, ok := rec.AppendJSON(make([]byte, 0, 320))
	if !ok {
		return nil, nil
	}
	if err := fsys.CreateNew(path, data); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, nil
		}
		return nil, err
	}
	return func() {
		b := disk.GetBuffer()
		cur, err := fsys.ReadFileInto(path, (*b)[:0])
		if err == nil && bytes.Equal(cur, data) {
			_ = fsys.Remove(path)
		}
		disk.PutBuffer(b, cur)
	}, nil
}

// AppendJSON appends r as encoding/json marshals it (field order, names,
// omitempty, string escaping and float format), without reflection; ok is
// false where encoding/json fails (a NaN or infinite birth time).
func (r Owner) AppendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"pid":`...)
	b = strconv.AppendInt(b, int64(r.PID), 10)
	if r.ProcStart != nil {
		b = journal.AppendString(append(b, `,"procStart":`...), *r.ProcStart)
	}
	b = journal.AppendString(append(b, `,"pidDomain":`...), r.PIDDomain)
	b = journal.AppendString(append(b, `,"pidSpace":`...), r.PIDSpace)
	ok := true
	b, ok = appendFloat(append(b, `,"lockBirthtimeMs":`...), r.LockBirthtimeMs)
	if r.LegacyLockBirthtimeMs != nil && ok {
		b, ok = appendFloat(append(b, `,"legacyLockBirthtimeMs":`...), *r.LegacyLockBirthtimeMs)
	}
	return append(b, '}'), ok
}

// appendFloat appends f as encoding/json encodes a float64.
func appendFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

// Identity is what Claude Code records of the process that holds a lock.
type Identity struct {
	Start  string // field 22 of /proc/<pid>/stat, as a decimal string
	Domain string // "linux:<machine-id>:<readlink /proc/self/ns/pid>"
	Space  string // "<hostname>#<readlink /proc/self/ns/pid>"
}

// ProcStatFields splits the text of /proc/<pid>/stat after the command
// name, as Claude Code does (the name may hold spaces and parentheses).
func ProcStatFields(stat string) ([]string, bool) {
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
