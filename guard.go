package credslots

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/gptme/credslots/internal/clilock"
	"github.com/gptme/credslots/internal/disk"
)

// GlobLockGuard returns a lock guard for [WithLockGuard] that reports the
// busy-signal files matching any of the glob patterns: their base names
// without extension, sorted and de-duplicated. A file whose content starts
// with the decimal PID of a process that no longer exists is stale and not
// reported; any other file, readable or not, is reported. A malformed
// pattern matches nothing.
func GlobLockGuard(patterns ...string) func() []string {
	patterns = append([]string(nil), patterns...)
	return func() []string {
		seen := map[string]bool{}
		for _, pattern := range patterns {
			matches, _ := filepath.Glob(pattern)
			for _, path := range matches {
				if staleLockFile(path) {
					continue
				}
				base := filepath.Base(path)
				seen[strings.TrimSuffix(base, filepath.Ext(base))] = true
			}
		}
		names := make([]string, 0, len(seen))
		for name := range seen {
			names = append(names, name)
		}
		sort.Strings(names)
		return names
	}
}

// staleLockFile reports whether path starts with the PID of a dead process.
// It reads through the package's bounded reader, so a FIFO or device never
// blocks it (such a file is reported, not stale).
func staleLockFile(path string) bool {
	data, err := disk.ReadRegular(path)
	if err != nil {
		return false
	}
	head := strings.TrimLeft(string(data[:min(len(data), 32)]), " \t\r\n")
	end := strings.IndexFunc(head, func(r rune) bool { return r < '0' || r > '9' })
	if end == 0 || end == -1 && len(head) == 0 {
		return false
	}
	if end == -1 {
		end = len(head)
	}
	pid, err := strconv.Atoi(head[:end])
	if err != nil || pid <= 0 {
		return false
	}
	return !clilock.ProcessExists(pid)
}

// DiscoverSubscriptions lists the subs whose slot files exist in dir for a
// slot template whose "{sub}" is in the file name (a directory part before
// it is allowed), sorted. It never returns a fingerprint sidecar, a backup
// (".prev"), a lock, a temporary file or a directory, nor a name that is not
// a valid sub, nor a file that is no slot: a copy by its name (".bak",
// ".orig", ".swp", "~" and the like) or a JSON document that is not a
// credential (of the format whose default slot template slotTemplate is,
// else of any format). A slot whose sidecar is beside it under the default
// fingerprint name is listed whatever its name looks like: a sub may be
// named old or backup. A file it cannot read or that is not JSON is
// listed, and [Manager.Status] reports it when it is not a credential.
// A template without "{sub}" in its file name returns an error
// wrapping [ErrInvalidConfig]; an unreadable directory returns that error.
func DiscoverSubscriptions(dir, slotTemplate string) ([]string, error) {
	if err := validateTemplate("slot template", slotTemplate); err != nil {
		return nil, err
	}
	tmplDir, tmplBase := filepath.Split(filepath.FromSlash(slotTemplate))
	if strings.Contains(tmplDir, subPlaceholder) || !strings.Contains(tmplBase, subPlaceholder) {
		return nil, invalid("slot template %q must have %s in its file name", slotTemplate, subPlaceholder)
	}
	prefix, suffix, _ := strings.Cut(tmplBase, subPlaceholder)
	// With one {sub}, a name of prefix, sub and suffix is its expansion.
	onePlaceholder := strings.Count(tmplBase, subPlaceholder) == 1
	ents, err := readDirUnsorted(filepath.Join(dir, tmplDir))
	if err != nil {
		return nil, fmt.Errorf("credslots: discover subscriptions: %w", err)
	}
	// A slot whose identity was captured has its sidecar beside it under
	// the default fingerprint name: it is a slot by that alone, and its
	// content need not be read here (Status reads it, and reports it when
	// it is no longer a credential).
	captured := make(map[string]bool, len(ents))
	for _, de := range ents {
		if name, ok := strings.CutSuffix(de.Name(), sidecarSuffix); ok {
			captured[name] = true
		}
	}
	var subs []string
	for _, de := range ents {
		name := de.Name()
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) || len(name) < len(prefix)+len(suffix) {
			continue
		}
		sub := name[len(prefix) : len(name)-len(suffix)]
		if (!onePlaceholder && expand(tmplBase, sub) != name) || validateSubName(sub) != nil {
			continue
		}
		// The cheap name checks first: half the entries are sidecars. A
		// captured slot is a slot whatever its name looks like (a sub named
		// old, backup or tmpwork, which init or add set up): the package
		// writes a sidecar for a slot only, and a copy or a temporary has
		// none of its own.
		if !captured[name] && (!slotLike(name) || copyName(name)) {
			continue
		}
		// The directory entry says what it is; only a symlink needs a stat.
		if t := de.Type(); !t.IsRegular() {
			if t&fs.ModeSymlink == 0 {
				continue
			}
			if fi, err := os.Stat(filepath.Join(dir, tmplDir, name)); err != nil || !fi.Mode().IsRegular() {
				continue
			}
		}
		if !captured[name] && !credentialContent(filepath.Join(dir, tmplDir, name), slotTemplate) {
			continue
		}
		subs = append(subs, sub)
	}
	sort.Strings(subs)
	return subs, nil
}

// readDirUnsorted is os.ReadDir without its sort: discovery sorts the subs
// it keeps, not every entry of the directory.
func readDirUnsorted(name string) ([]fs.DirEntry, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	ents, err := f.ReadDir(-1)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return ents, err
}

// sidecarSuffix ends the name of a slot's fingerprint sidecar under the
// default fingerprint template: the slot's name followed by it.
const sidecarSuffix = ".fingerprint.json"

// slotLike rejects the names of files the package or a CLI keeps beside the
// slots: sidecars, backups, locks, logs and temporaries.
func slotLike(name string) bool {
	if strings.Contains(name, ".tmp") {
		return false
	}
	for _, suffix := range []string{sidecarSuffix, prevSuffix, lockSuffix, ".jsonl"} {
		if strings.HasSuffix(name, suffix) {
			return false
		}
	}
	return true
}
