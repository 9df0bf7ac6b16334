//go:build linux

package credslots

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/gptme/credslots/internal/disk"
)

// ProcessGuard returns a lock guard for [WithLockGuard] that reports a
// busy-signal, "NAME (pid N)", for every running process other than this one
// whose executable's base name is one of names, sorted. It reads /proc: the
// executable's link where it may, else the process's command name (which the
// kernel cuts to 15 bytes, so a name is compared on its first 15 bytes
// there).
//
// Codex CLI holds no lock during the network part of its token refresh and
// discards its new tokens if auth.json changed meanwhile, so the only safe
// time to switch is while no codex process runs: ProcessGuard("codex").
//
// On platforms without /proc the guard reports one busy-signal saying it
// cannot tell, so that automated changes are deferred rather than made
// blind; [Force] overrides it.
func ProcessGuard(names ...string) func() []string {
	want := map[string]bool{}
	for _, n := range names {
		if n != "" {
			want[n] = true
		}
	}
	self := os.Getpid()
	return func() []string {
		if len(want) == 0 {
			return nil
		}
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return []string{"process guard: cannot list processes: " + err.Error()}
		}
		var busy []string
		for _, de := range ents {
			pid, err := strconv.Atoi(de.Name())
			if err != nil || pid == self {
				continue
			}
			if name, ok := processName(pid, want); ok {
				busy = append(busy, name+" (pid "+strconv.Itoa(pid)+")")
			}
		}
		sort.Strings(busy)
		return busy
	}
}

// processName returns which of want pid runs, if any.
func processName(pid int, want map[string]bool) (string, bool) {
	dir := "/proc/" + strconv.Itoa(pid)
	if exe, err := os.Readlink(dir + "/exe"); err == nil {
		base := filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
		return base, want[base]
	}
	comm, err := disk.ReadRegular(dir + "/comm")
	if err != nil {
		return "", false
	}
	c := strings.TrimSpace(string(comm))
	for name := range want {
		if name == c || len(name) > 15 && name[:15] == c {
			return name, true
		}
	}
	return "", false
}
