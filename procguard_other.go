//go:build !linux

package credslots

import "runtime"

// ProcessGuard returns a lock guard for [WithLockGuard] that reports a
// busy-signal for every running process whose executable's base name is one
// of names. It needs Linux's /proc; here it cannot tell, so it reports one
// busy-signal saying so whenever names is not empty, and automated changes
// are deferred rather than made blind. [Force] overrides it.
func ProcessGuard(names ...string) func() []string {
	n := 0
	for _, name := range names {
		if name != "" {
			n++
		}
	}
	return func() []string {
		if n == 0 {
			return nil
		}
		return []string{"process guard unsupported on " + runtime.GOOS}
	}
}
