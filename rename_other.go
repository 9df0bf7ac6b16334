//go:build !linux && !darwin

package credslots

// exchange is unavailable here; swapInSymlink falls back to re-checking the
// live path immediately before a plain rename.
func exchange(a, b string) error { return errExchangeUnsupported }

// renameNoReplace is unavailable here; see exchange.
func renameNoReplace(from, to string) error { return errExchangeUnsupported }
