package credslots

// This file removes the temporaries a killed process left behind.

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/gptme/credslots/internal/disk"
)

// sweepTemps removes the package's temporaries last modified before cutoff
// in dir, left by a process that was killed mid-operation. It touches only
// names it can prove it wrote: ours reports, for a temporary's destination
// base name (".<base>.credslots.tmp.<random>"), whether the package writes a
// file of that name in dir; a directory is removed only when dryRun matches
// its name (the command's heal --dry-run working copy). A regular file
// under a symlink-swap name may be the only copy of a credential (the
// process died between exchange and verification), so it is handed to
// rescue instead of being removed, unless known reports its hash as kept
// elsewhere.
func sweepTemps(fsys disk.FS, dir string, cutoff time.Time, ours func(base string) bool, dryRun func(name string) bool,
	known func(hash string) bool, rescue func(string)) {
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range ents {
		name := de.Name()
		if !isTempName(name) {
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := fsys.Lstat(p)
		if err != nil || fi.ModTime().After(cutoff) {
			continue
		}
		switch {
		case fi.IsDir():
			// A private working copy (the command's heal --dry-run) whose
			// process died: every file in it is a copy.
			if dryRun(name) {
				_ = fsys.RemoveAll(p)
			}
			continue
		case !ours(tempDest(name)):
			continue // a name like ours, but not of a file we write here
		case strings.Contains(name, tmpLinkMarker) && fi.Mode().IsRegular():
			if data, err := fsys.ReadFile(p); err != nil || !known(hashBytes(data)) {
				rescue(p)
				continue
			}
		}
		_ = fsys.Remove(p)
	}
}

// tempDest is the destination base name a temporary of ours was made for
// (".<base><marker><random>"), or "" for any other name.
func tempDest(name string) string {
	if !strings.HasPrefix(name, ".") {
		return ""
	}
	for _, marker := range []string{tmpMarker, tmpLinkMarker} {
		if i := strings.Index(name, marker); i > 1 {
			return name[1:i]
		}
	}
	return ""
}

// sweptMarker is the private file whose mtime says when the last sweep ran.
const sweptMarker = "swept"

// sweepIfDue sweeps when the last sweep is older than the sweep age, so that
// a change costs no directory listing (its cost grows with the number of
// slots) more than once per sweep age. Nothing younger than the sweep age is
// ever removed, so sweeping more often would find nothing more.
func (m *Manager) sweepIfDue() {
	// A sweep this Manager saw or made less than the sweep age ago, on the
	// monotonic clock, needs no look at the marker: a sweep skipped by
	// mistake (another process reset the marker, the wall clock jumped)
	// only defers the cleanup of temporaries, which are never in the way.
	if due := m.locks.sweepDue.Load(); due != 0 && monoNow() < due {
		return
	}
	marker := filepath.Join(m.private, sweptMarker)
	fi, err := m.cfg.fs.Lstat(marker)
	if err == nil {
		if age := time.Since(fi.ModTime()); age < m.cfg.sweepAge {
			m.sweptFor(m.cfg.sweepAge - max(age, 0))
			return
		}
	}
	m.sweep()
	if err != nil {
		// Created empty, 0600; its content never matters.
		if m.cfg.fs.Append(marker, nil, false) == nil {
			m.own(marker)
			m.sweptFor(m.cfg.sweepAge)
		}
		return
	}
	now := time.Now()
	if m.cfg.fs.Chtimes(marker, now, now) == nil {
		m.sweptFor(m.cfg.sweepAge)
	}
}

// sweptFor remembers that no sweep is due for d.
func (m *Manager) sweptFor(d time.Duration) {
	if d > 0 {
		m.locks.sweepDue.Store(monoNow() + int64(d))
	}
}

// monoBase anchors monoNow.
var monoBase = time.Now()

// monoNow is the monotonic clock in nanoseconds since monoBase (never 0).
func monoNow() int64 { return int64(time.Since(monoBase)) + 1 }

// sweep removes stale temporaries from every directory the manager writes
// to, as long as that directory is the creds dir, its private directory or
// a real directory inside the creds dir: nothing behind a symlinked
// directory, nothing outside the creds dir is ever removed.
func (m *Manager) sweep() {
	bases := map[string]map[string]bool{} // dir -> base names written there; nil: any (private dir)
	add := func(path string) {
		dir := filepath.Dir(path)
		if bases[dir] == nil {
			bases[dir] = map[string]bool{}
		}
		bases[dir][filepath.Base(path)] = true
	}
	add(m.live)
	add(m.live + prevSuffix)
	for _, sub := range m.subs {
		add(m.slots[sub])
		add(m.slots[sub] + prevSuffix)
		add(m.prints[sub])
	}
	if m.cfg.carryState && m.cfg.format.carriesState() {
		if path := m.claudeJSONPath(); path != "" {
			add(path) // an account splice's temporary
		}
	}
	for _, cl := range m.cfg.format.cliLocks(m.dir, m.dir) {
		if cl.writesOwner {
			add(ownerPathFor(cl.path))
		}
	}
	var hashes map[string]bool
	known := func(h string) bool {
		if hashes == nil {
			hashes = map[string]bool{}
			for _, data := range m.readSlots().data {
				hashes[hashBytes(data)] = true
			}
		}
		return hashes[h]
	}
	dryRunPrefix := "." + filepath.Base(m.live) + tmpMarker + "dryrun-"
	cutoff := time.Now().Add(-m.cfg.sweepAge)
	sweepIn := func(dir string, ours func(string) bool) {
		if !m.realDirInside(dir) {
			return
		}
		dryRun := func(name string) bool { return dir == m.dir && strings.HasPrefix(name, dryRunPrefix) }
		sweepTemps(m.cfg.fs, dir, cutoff, ours, dryRun, known, m.rescue)
	}
	for dir, names := range bases {
		if dir == m.private {
			continue
		}
		names := names
		sweepIn(dir, func(base string) bool { return names[base] })
	}
	sweepIn(m.private, func(base string) bool { return base != "" })
	sweepIn(m.leasesDir(), func(base string) bool { return base != "" }) // lease records
}

// realDirInside reports whether dir is the creds dir or a directory inside
// it reached without a symlink: the only places the sweep may remove from.
func (m *Manager) realDirInside(dir string) bool {
	if dir == m.dir {
		return true
	}
	rel, err := filepath.Rel(m.dir, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return false
	}
	cur := m.dir
	for _, elem := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, elem)
		fi, err := m.cfg.fs.Lstat(cur)
		if err != nil || !fi.IsDir() {
			return false // a symlink, or nothing: nothing to sweep there
		}
	}
	return true
}
