//go:build !unix && !windows

package disk

import (
	"errors"
	"os"
)

// TryLock is unsupported on this platform: mutations fail rather than run
// unserialized.
func TryLock(string) (func() error, bool, error) { return nil, false, errors.ErrUnsupported }

// LockOpen is unsupported here too: no lease can be taken.
func LockOpen(string, bool) (*os.File, bool, error) { return nil, false, errors.ErrUnsupported }
