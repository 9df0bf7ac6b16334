package clilock

import (
	"errors"
	"runtime"
)

// ErrNoProcessList is what Running returns where processes cannot be
// listed by executable name (no /proc).
var ErrNoProcessList = errors.New("process guard unsupported on " + runtime.GOOS)
