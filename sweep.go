package credslots

// This file removes the temporaries a killed process left behind.

import (
	"path/filepath"
	"strings"
	"time"
)

// sweepTemps removes the package's temporaries last modified before cutoff
// in dir, left by a process that was killed mid-operation. A regular file
// under a symlink-swap name may be the only copy of a credential (the
// process died between exchange and verification), so it is handed to
// rescue instead of being removed, unless known reports its hash as kept
// elsewhere.
func sweepTemps(fsys fileSystem, dir string, cutoff time.Time, known func(hash string) bool, rescue func(string)) {
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
			_ = fsys.RemoveAll(p)
			continue
		case strings.Contains(name, tmpLinkMarker) && fi.Mode().IsRegular():
			if data, err := fsys.ReadFile(p); err != nil || !known(hashBytes(data)) {
				rescue(p)
				continue
			}
		}
		_ = fsys.Remove(p)
	}
}

// sweptMarker is the private file whose mtime says when the last sweep ran.
const sweptMarker = "swept"

// sweepIfDue sweeps when the last sweep is older than the sweep age, so that
// a change costs no directory listing (its cost grows with the number of
// slots) more than once per sweep age. Nothing younger than the sweep age is
// ever removed, so sweeping more often would find nothing more.
func (m *Manager) sweepIfDue() {
	marker := filepath.Join(m.private, sweptMarker)
	fi, err := m.cfg.fs.Lstat(marker)
	if err == nil && time.Since(fi.ModTime()) < m.cfg.sweepAge {
		return
	}
	m.sweep()
	if err != nil {
		// Created empty, 0600; its content never matters.
		if m.cfg.fs.Append(marker, nil, false) == nil {
			m.own(marker)
		}
		return
	}
	now := time.Now()
	_ = m.cfg.fs.Chtimes(marker, now, now)
}

// sweep removes stale temporaries from every directory the manager writes to.
func (m *Manager) sweep() {
	dirs := map[string]bool{filepath.Dir(m.live): true, m.private: true, m.leasesDir(): true}
	for _, sub := range m.subs {
		dirs[filepath.Dir(m.slots[sub])] = true
		dirs[filepath.Dir(m.prints[sub])] = true
	}
	if m.cfg.carryState && m.cfg.format.carriesState() {
		if path := m.claudeJSONPath(); path != "" {
			dirs[filepath.Dir(path)] = true // an account splice's temporary
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
	cutoff := time.Now().Add(-m.cfg.sweepAge)
	for dir := range dirs {
		sweepTemps(m.cfg.fs, dir, cutoff, known, m.rescue)
	}
}
