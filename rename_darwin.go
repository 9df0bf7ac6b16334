//go:build darwin

package credslots

import "golang.org/x/sys/unix"

// exchange atomically swaps a and b with renamex_np(RENAME_SWAP), which APFS
// supports; elsewhere it reports errExchangeUnsupported.
func exchange(a, b string) error {
	return renameErr(b, unix.RenamexNp(a, b, unix.RENAME_SWAP))
}

// renameNoReplace renames from to to with renamex_np(RENAME_EXCL).
func renameNoReplace(from, to string) error {
	return renameErr(to, unix.RenamexNp(from, to, unix.RENAME_EXCL))
}
