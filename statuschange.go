package credslots

import (
	"bytes"
	"path/filepath"
	"sort"

	"github.com/gptme/credslots/internal/disk"
)

// changeProblems adds to st what keeps the next change from being made, or
// from being complete: a directory the package must write in that this
// process cannot write (the creds dir, its private directory, a slot's
// directory), and a fingerprint capture that failed after a change.
func (m *Manager) changeProblems(st *Status) {
	problem := func(s string) { st.Problems = append(st.Problems, s) }
	dirs := []string{m.dir}
	if fi, err := m.cfg.fs.Lstat(m.private); err == nil && fi.IsDir() {
		dirs = append(dirs, m.private)
	} else if err == nil {
		// ensurePrivateDir refuses it: every change fails.
		problem("changes cannot be made: " + m.private + " is not a directory")
	}
	seen := map[string]bool{}
	for _, sub := range m.subs {
		dirs = append(dirs, filepath.Dir(m.slots[sub]))
	}
	for _, dir := range dirs {
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if err := disk.WritableDir(dir); err != nil {
			problem("changes cannot be made: directory " + dir + " is not writable by this user (" + err.Error() + ")")
		}
	}
	if m.cfg.cliLocks {
		if locks, err := m.cliLockPaths(); err == nil {
			for _, cl := range locks {
				// A lock directory's path holding anything else fails
				// every change (takeCLIDir refuses it), but for the legacy
				// lock, which Claude Code and credslots go on without.
				if fi, err := m.cfg.fs.Lstat(cl.path); cl.stale != 0 && err == nil && !fi.IsDir() && !cl.legacy {
					problem("changes cannot be made: " + cl.path + " is not a lock directory")
				}
			}
		}
	}
	data, err := m.journalBytes()
	if err != nil {
		// Reported where the journal is read for a change; with no journal,
		// the old switch log it replaces holds only done records.
		return
	}
	if !mayRecordFailure(data) {
		return // no record can be a failed capture: nothing to decode
	}
	failed := captureProblems(m.parseJournal(data))
	subs := make([]string, 0, len(failed))
	for sub := range failed {
		if m.knows(sub) {
			subs = append(subs, sub)
		}
	}
	sort.Strings(subs)
	for _, sub := range subs {
		problem("slot " + sub + ": its fingerprint capture after the last change failed (" + failed[sub] + "): run capture " + sub)
	}
}

// mayRecordFailure reports whether a record of the journal data could have
// the failed phase: only when its text is there, or when an escape could
// spell it (a JSON string writes a letter as itself or as \u).
func mayRecordFailure(data []byte) bool {
	return bytes.Contains(data, []byte(phaseFailed)) || bytes.Contains(data, []byte(`\u`))
}
