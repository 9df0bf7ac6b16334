package credslots

import (
	"errors"

	"github.com/gptme/credslots/internal/clilock"
)

// ProcessGuard returns a lock guard for [WithLockGuard] that reports a
// busy-signal, "NAME (pid N)", for every running process other than this one
// whose executable's base name is one of names, sorted. On Linux it reads
// /proc: the executable's link where it may, else the process's command
// name (which the kernel cuts to 15 bytes, so a name is compared on its
// first 15 bytes there).
//
// Codex CLI holds no lock during the network part of its token refresh and
// discards its new tokens if auth.json changed meanwhile, so the only safe
// time to switch is while no codex process runs: ProcessGuard("codex").
//
// On platforms without /proc the guard reports one busy-signal saying it
// cannot tell, whenever names is not empty, so that automated changes are
// deferred rather than made blind; [Force] overrides it.
func ProcessGuard(names ...string) func() []string {
	want := map[string]bool{}
	for _, n := range names {
		if n != "" {
			want[n] = true
		}
	}
	return func() []string {
		if len(want) == 0 {
			return nil
		}
		busy, err := clilock.Running(want)
		switch {
		case errors.Is(err, clilock.ErrNoProcessList):
			return []string{err.Error()}
		case err != nil:
			return []string{"process guard: cannot list processes: " + err.Error()}
		}
		return busy
	}
}
