//go:build linux

package disk

import "golang.org/x/sys/unix"

// Exchange atomically swaps a and b with renameat2(RENAME_EXCHANGE).
func Exchange(a, b string) error {
	return renameErr(b, unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE))
}

// RenameNoReplace renames from to to with renameat2(RENAME_NOREPLACE).
func RenameNoReplace(from, to string) error {
	return renameErr(to, unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE))
}
