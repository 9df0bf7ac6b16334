//go:build darwin

package disk

import "golang.org/x/sys/unix"

// Exchange atomically swaps a and b with renamex_np(RENAME_SWAP), which APFS
// supports; elsewhere it reports ErrExchangeUnsupported.
func Exchange(a, b string) error {
	return renameErr(b, unix.RenamexNp(a, b, unix.RENAME_SWAP))
}

// RenameNoReplace renames from to to with renamex_np(RENAME_EXCL).
func RenameNoReplace(from, to string) error {
	return renameErr(to, unix.RenamexNp(from, to, unix.RENAME_EXCL))
}
