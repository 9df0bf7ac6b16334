//go:build linux

package clilock

import (
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/gptme/credslots/internal/disk"
)

var (
	selfOnce sync.Once
	selfID   Identity
	selfOK   bool
)

// Self is this process's identity as Claude Code computes its own:
// procStart from /proc/<pid>/stat, pidDomain from /etc/machine-id and the
// pid namespace, pidSpace from the host name and the pid namespace. It is
// read once: none of it changes while the process lives.
func Self() (Identity, bool) {
	selfOnce.Do(func() {
		start, _, ok := ProcStat(selfPID)
		if !ok {
			return
		}
		ns, err := os.Readlink("/proc/self/ns/pid")
		if err != nil {
			ns = ""
		}
		machine, err := os.ReadFile("/etc/machine-id")
		if err != nil {
			machine = nil
		}
		host, err := os.Hostname()
		if err != nil {
			return // Claude Code's hostname() would say something: not exact
		}
		space := host
		if ns != "" {
			space += "#" + ns
		}
		selfID = Identity{Start: start, Domain: "linux:" + strings.TrimSpace(string(machine)) + ":" + ns, Space: space}
		selfOK = true
	})
	return selfID, selfOK
}

// ProcStat reads /proc/<pid>/stat: its start time (field 22) and state
// (field 3); exists is false when there is no such process.
func ProcStat(pid int) (start, state string, exists bool) {
	data, err := disk.ReadRegularMax("/proc/"+strconv.Itoa(pid)+"/stat", 4096)
	if err != nil {
		return "", "", ProcessExists(pid)
	}
	fields, ok := ProcStatFields(string(data))
	if !ok || len(fields) < 20 {
		return "", "", true
	}
	return strings.TrimSpace(fields[19]), fields[0], true
}

// procRoot is where the process table is read; a test points it elsewhere.
var procRoot = "/proc"

// minProcEntries is how many processes Claude Code wants /proc to list
// before it trusts what /proc says of a pid.
const minProcEntries = 16

// pidViewTrusted is Claude Code's own test (2.1.332) before it calls a
// holder gone: /proc/self names this very process (a /proc of another pid
// namespace does not), and /proc lists at least 16 processes (a sandboxed
// or hidden process table does not). Without it no record proves a holder
// gone: the stale time decides.
func pidViewTrusted() bool {
	self, err := os.Readlink(procRoot + "/self")
	if err != nil || self != strconv.Itoa(selfPID) {
		return false
	}
	f, err := os.Open(procRoot)
	if err != nil {
		return false
	}
	defer f.Close()
	n := 0
	for n < minProcEntries {
		names, err := f.Readdirnames(64)
		for _, name := range names {
			if name != "" && strings.Trim(name, "0123456789") == "" {
				n++
			}
		}
		if err != nil {
			break
		}
	}
	return n >= minProcEntries
}
