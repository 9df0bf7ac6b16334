package disk

import (
	"io/fs"
	"time"
)

// LockStat is what one stat of a lock directory says, not following a
// symlink: its type, inode, mtime and, where the platform and file system
// report it, its birth time. The CLI lock protocols need all of them, so
// that a held lock costs one stat where it would cost an lstat and a
// statx.
type LockStat struct {
	Mode  fs.FileMode // the type bits only (fs.ModeDir, fs.ModeSymlink, ...)
	Ino   uint64      // 0 where the platform has none
	Mtime time.Time
	// BirthSec and BirthNsec are the birth time; Birth is false where it is
	// unknown (then both are zero).
	BirthSec, BirthNsec int64
	Birth               bool
}

// IsDir reports whether the entry is a directory (not a symlink to one).
func (s LockStat) IsDir() bool { return s.Mode&fs.ModeType == fs.ModeDir }

// BirthMs is the birth time as JavaScript's lstat reports birthtimeMs:
// seconds times 1000 plus nanoseconds over 1e6, in float64. ok is false
// where it is unknown.
func (s LockStat) BirthMs() (float64, bool) {
	if !s.Birth || s.BirthSec == 0 && s.BirthNsec == 0 {
		return 0, false
	}
	return float64(s.BirthSec)*1000 + float64(s.BirthNsec)/1e6, true
}
