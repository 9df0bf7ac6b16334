//go:build linux

package credslots

import (
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/gptme/credslots/internal/disk"
	"golang.org/x/sys/unix"
)

var (
	selfOnce sync.Once
	selfID   identity
	selfOK   bool
)

// selfIdentity is this process's identity as Claude Code computes its own:
// procStart from /proc/<pid>/stat, pidDomain from /etc/machine-id and the
// pid namespace, pidSpace from the host name and the pid namespace.
func selfIdentity() (identity, bool) {
	selfOnce.Do(func() {
		start, _, ok := procStat(os.Getpid())
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
		selfID = identity{start: start, domain: "linux:" + strings.TrimSpace(string(machine)) + ":" + ns, space: space}
		selfOK = true
	})
	return selfID, selfOK
}

// procStat reads /proc/<pid>/stat: its start time (field 22) and state
// (field 3); exists is false when there is no such process.
func procStat(pid int) (start, state string, exists bool) {
	data, err := disk.ReadRegularMax("/proc/"+pidString(pid)+"/stat", 4096)
	if err != nil {
		return "", "", processExists(pid)
	}
	fields, ok := procStatFields(string(data))
	if !ok || len(fields) < 20 {
		return "", "", true
	}
	return strings.TrimSpace(fields[19]), fields[0], true
}

// birthtime is path's birth time from statx, not following a symlink.
func birthtime(path string) (sec, nsec int64, ok bool) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BTIME, &st); err != nil {
		return 0, 0, false
	}
	if st.Mask&unix.STATX_BTIME == 0 {
		return 0, 0, false
	}
	return st.Btime.Sec, int64(st.Btime.Nsec), true
}

// inodeOf is a file's inode number.
func inodeOf(fi fs.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Ino, true
}
