package credslots

import "golang.org/x/sys/unix"

// floorStatLock is a lock directory's look at its floor: one statx, for
// its identity and birth time (in ms, for the owner record).
func floorStatLock(path string) (int64, error) {
	var stx unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE|unix.STATX_MODE|unix.STATX_MTIME|unix.STATX_INO|unix.STATX_BTIME, &stx)
	return stx.Btime.Sec*1000 + int64(stx.Btime.Nsec)/1e6, err
}

// floorExchange swaps tmp and live atomically, as the package's swap does.
func floorExchange(tmp, live string) error {
	return unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, live, unix.RENAME_EXCHANGE)
}

// floorExchanges says whether floorExchange is an atomic exchange: what it took out is left at the temporary name.
const floorExchanges = true
