package credslots

// This file keeps the package's writes inside the creds dir and, when run as
// root on another user's creds dir, gives every file it creates that user.

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/gptme/credslots/internal/atomicfile"
	"github.com/gptme/credslots/internal/disk"
)

// writeFile is the one way a Manager writes a file: atomically (see
// atomicfile.WriteFile), only inside the creds dir (a directory on the way
// that is a symlink is refused, never followed), and owned like the file it
// replaces, or else like its directory.
func (m *Manager) writeFile(dest string, data []byte) error {
	if err := m.contained(dest); err != nil {
		return err
	}
	return atomicfile.WriteFile(m.cfg.fs, dest, data, m.ownerFor(dest))
}

// contained refuses a path below the creds dir whose directories between the
// creds dir and the file include a symlink: writing there could land
// outside the creds dir.
func (m *Manager) contained(path string) error {
	rel, err := filepath.Rel(m.dir, filepath.Dir(path))
	if err != nil || rel == "." {
		return nil
	}
	if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("credslots: refusing to write %s: outside the creds dir %s", path, m.dir)
	}
	dir := m.dir
	for _, elem := range strings.Split(rel, string(filepath.Separator)) {
		dir = filepath.Join(dir, elem)
		fi, err := m.cfg.fs.Lstat(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // the write fails on its own
			}
			return fmt.Errorf("credslots: check %s: %w", dir, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("credslots: refusing to write %s: directory %s is a symlink, which could lead outside the creds dir", path, dir)
		}
	}
	return nil
}

// ownerFor returns the owner a file created at path must have: when the
// package runs as root, that of the file at path, or else of its directory;
// nil when the creator's ownership is right.
func (m *Manager) ownerFor(path string) *atomicfile.Owner {
	if !disk.RunningAsRoot() {
		return nil
	}
	fi, err := m.cfg.fs.Lstat(path)
	if err != nil {
		if fi, err = m.cfg.fs.Stat(filepath.Dir(path)); err != nil {
			return nil
		}
	}
	uid, gid, ok := disk.OwnerOf(fi)
	if !ok || uid == 0 && gid == 0 {
		return nil
	}
	return &atomicfile.Owner{UID: uid, GID: gid}
}

// own gives the file the package just created at path the owner ownerFor
// would pick for a new file in its directory (a no-op unless run as root).
// A failure is logged: the file is usable by root, and the next change
// tries again.
func (m *Manager) own(path string) {
	if !disk.RunningAsRoot() {
		return
	}
	m.ownAs(path, m.dirOwner(filepath.Dir(path)))
}

// dirOwner is the owner new files in dir take when the package runs as
// root: nil when that is root itself (or unknown), so nothing is to be done.
func (m *Manager) dirOwner(dir string) *atomicfile.Owner {
	fi, err := m.cfg.fs.Stat(dir)
	if err != nil {
		return nil
	}
	return ownerFromInfo(fi)
}

// ownerFromInfo is dirOwner from a stat of the directory already made.
func ownerFromInfo(fi fs.FileInfo) *atomicfile.Owner {
	uid, gid, ok := disk.OwnerOf(fi)
	if !ok || uid == 0 && gid == 0 {
		return nil
	}
	return &atomicfile.Owner{UID: uid, GID: gid}
}

// ownAs gives path the owner o (nil: nothing to do).
func (m *Manager) ownAs(path string, o *atomicfile.Owner) {
	if o == nil {
		return
	}
	if cur, err := m.cfg.fs.Lstat(path); err == nil {
		if u, g, ok := disk.OwnerOf(cur); ok && u == o.UID && g == o.GID {
			return
		}
	}
	if err := m.cfg.fs.Lchown(path, o.UID, o.GID); err != nil {
		m.cfg.logger.Warn("could not give a created file the creds dir's owner", "path", path, "reason", err.Error())
	}
}

// ownerMemo is own for the files one change creates: whether the package
// runs as root is asked once, and each directory's owner is read once
// (or taken from a stat the change made of it anyway, see seed), for the
// lock file, the lock directories and the owner record made together.
// Keeping them for the change is safe: what they could change under it is
// a chown of the creds dir racing the change itself, which no single read
// would order either.
type ownerMemo struct {
	m    *Manager
	root bool
	// The directories whose owner is known, and their owners: a change
	// creates files in at most three (the private dir, the creds dir and
	// its parent); a fourth is read again each time.
	n      int
	dirs   [4]string
	owners [4]*atomicfile.Owner
}

// lookup is the owner remembered for dir.
func (o *ownerMemo) lookup(dir string) (*atomicfile.Owner, bool) {
	for i := 0; i < o.n; i++ {
		if o.dirs[i] == dir {
			return o.owners[i], true
		}
	}
	return nil, false
}

// remember keeps dir's owner, while there is room.
func (o *ownerMemo) remember(dir string, owner *atomicfile.Owner) {
	if o.n < len(o.dirs) {
		o.dirs[o.n], o.owners[o.n] = dir, owner
		o.n++
	}
}

// seed records what a stat of directory dir said.
func (o *ownerMemo) seed(dir string, fi fs.FileInfo) {
	if !o.root || fi == nil {
		return
	}
	if _, seen := o.lookup(dir); !seen {
		o.remember(dir, ownerFromInfo(fi))
	}
}

// own is [Manager.own] through the memo.
func (o *ownerMemo) own(path string) {
	if !o.root {
		return
	}
	dir := parentOf(path)
	owner, seen := o.lookup(dir)
	if !seen {
		owner = o.m.dirOwner(dir)
		o.remember(dir, owner)
	}
	o.m.ownAs(path, owner)
}

// parentOf is filepath.Dir of a path the Manager joined (so clean), without
// cleaning it again; elsewhere than on a separator-only-slash system, or for
// a path in the root, it is filepath.Dir.
func parentOf(path string) string {
	if filepath.Separator == '/' {
		if i := strings.LastIndexByte(path, '/'); i > 0 {
			return path[:i]
		}
	}
	return filepath.Dir(path)
}
