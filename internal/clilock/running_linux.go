//go:build linux

package clilock

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/gptme/credslots/internal/disk"
)

// Running returns "NAME (pid N)", sorted, for every running process other
// than this one whose executable's base name is in want. It reads /proc:
// the executable's link where it may, else the process's command name
// (which the kernel cuts to 15 bytes, so a name is compared on its first
// 15 bytes there).
func Running(want map[string]bool) ([]string, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var busy []string
	for _, de := range ents {
		pid, err := strconv.Atoi(de.Name())
		if err != nil || pid == selfPID {
			continue
		}
		if name, ok := ProcessName(pid, want); ok {
			busy = append(busy, name+" (pid "+strconv.Itoa(pid)+")")
		}
	}
	sort.Strings(busy)
	return busy, nil
}

// ProcessName returns which of want pid runs, if any.
func ProcessName(pid int, want map[string]bool) (string, bool) {
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
