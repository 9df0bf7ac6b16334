//go:build !linux

package credslots

import "io/fs"

// selfIdentity: Claude Code's owner record is computed from /proc here
// too only on Linux; elsewhere no field can be matched exactly, so no
// record is written and none proves a holder gone.
func selfIdentity() (identity, bool) { return identity{}, false }

// procStat knows only whether the process exists.
func procStat(pid int) (start, state string, exists bool) { return "", "", processExists(pid) }

// birthtime is not read here: leftovers wait for the stale time.
func birthtime(string) (sec, nsec int64, ok bool) { return 0, 0, false }

// inodeOf is not needed where birthtime is unknown.
func inodeOf(fs.FileInfo) (uint64, bool) { return 0, false }
