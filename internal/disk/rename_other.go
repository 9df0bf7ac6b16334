//go:build !linux && !darwin

package disk

// Exchange is unavailable here; swapInSymlink falls back to re-checking the
// live path immediately before a plain rename.
func Exchange(a, b string) error { return ErrExchangeUnsupported }

// RenameNoReplace is unavailable here; see exchange.
func RenameNoReplace(from, to string) error { return ErrExchangeUnsupported }
