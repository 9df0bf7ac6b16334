//go:build unix && !linux

package credslots

import "golang.org/x/sys/unix"

// floorStatLock is a lock directory's look at its floor: one lstat (no
// birth time here; its mtime stands in for the owner record's field).
func floorStatLock(path string) (int64, error) {
	var st unix.Stat_t
	err := unix.Lstat(path, &st)
	sec, nsec := st.Mtim.Unix()
	return sec*1000 + nsec/1e6, err
}

// floorExchange replaces live by tmp: without an atomic exchange, the
// package renames (see swap.Symlink); the floor does the same.
func floorExchange(tmp, live string) error {
	return unix.Rename(tmp, live)
}

// floorExchanges says whether floorExchange is no atomic exchange: the temporary name is gone after the rename.
const floorExchanges = false
