//go:build !unix && !windows

package credslots

import (
	"errors"
	"os"
)

// tryLock is unsupported on this platform: mutations fail rather than run
// unserialized.
func tryLock(string) (func() error, bool, error) { return nil, false, errors.ErrUnsupported }

// lockOpen is unsupported here too: no lease can be taken.
func lockOpen(string, bool) (*os.File, bool, error) { return nil, false, errors.ErrUnsupported }

// processExists cannot tell here, so every PID counts as alive and no lock
// file is ever treated as stale.
func processExists(int) bool { return true }
