//go:build !unix && !windows

package credslots

import "errors"

// tryLock is unsupported on this platform: mutations fail rather than run
// unserialized.
func tryLock(string) (func() error, bool, error) { return nil, false, errors.ErrUnsupported }

// processExists cannot tell here, so every PID counts as alive and no lock
// file is ever treated as stale.
func processExists(int) bool { return true }
