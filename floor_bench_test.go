//go:build unix

package credslots

// Each operation beside its floor: the fewest system calls the operation
// needs, made directly with golang.org/x/sys/unix on the same files. The
// benchmarks run each pair; TestFloorPairs checks that both sides of each
// succeed; TestFloorReport (floor_report_test.go, build tag floorreport, run
// by `make bench`) interleaves each pair over many rounds and prints the
// medians and their ratio. The files live on /dev/shm when it
// exists (tmpfs), else under the test's temp dir; CREDSLOTS_BENCH_DIR names
// another directory (a real disk, say).

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// floorPair is one operation of credslots and its floor, over the same
// creds dir.
type floorPair struct {
	name      string
	credslots func() error
	floor     func() error
}

// floorBaseDir is where the pairs' creds dirs go: CREDSLOTS_BENCH_DIR, else
// /dev/shm, else the test's temp dir.
func floorBaseDir(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("CREDSLOTS_BENCH_DIR")
	if base == "" {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			base = "/dev/shm"
		}
	}
	if base == "" {
		return tb.TempDir()
	}
	dir, err := os.MkdirTemp(base, "credslots-floor-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// floorManager is benchManager for any testing.TB, in a creds dir of its
// own under base.
func floorManager(tb testing.TB, base string, n int, opts ...Option) *Manager {
	tb.Helper()
	subs := make([]string, n)
	for i := range subs {
		subs[i] = fmt.Sprintf("sub%03d", i)
	}
	dir, err := os.MkdirTemp(base, "creds-")
	if err != nil {
		tb.Fatal(err)
	}
	m, err := New(append([]Option{WithCredsDir(dir), WithSubscriptions(subs...), WithClock(fixedClock)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	for _, sub := range subs {
		writeSlot(tb, m.SlotPath(sub), fresh, "rt-"+sub)
		writeSidecar(tb, m, sub, "rt-"+sub)
	}
	if _, err := m.SwitchTo(subs[n-1], "bench"); err != nil {
		tb.Fatal(err)
	}
	return m
}

// floorRead is a file's read at its floor: open, read to EOF, close.
func floorRead(path string, buf []byte) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	for {
		n, rerr := unix.Read(fd, buf)
		if rerr != nil {
			_ = unix.Close(fd)
			return rerr
		}
		if n == 0 {
			break
		}
	}
	return unix.Close(fd)
}

// floorReadLive is floorRead following the live symlink.
func floorReadLive(path string, buf []byte) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	for {
		n, rerr := unix.Read(fd, buf)
		if rerr != nil {
			_ = unix.Close(fd)
			return rerr
		}
		if n == 0 {
			break
		}
	}
	return unix.Close(fd)
}

// floorAppend appends line to name, fsynced when durable.
func floorAppend(name string, line []byte, durable bool) error {
	fd, err := unix.Open(name, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := unix.Write(fd, line); err != nil {
		_ = unix.Close(fd)
		return err
	}
	if durable {
		if err := unix.Fsync(fd); err != nil {
			_ = unix.Close(fd)
			return err
		}
	}
	return unix.Close(fd)
}

// floorSyncDir fsyncs the directory dir: open, fsync, close.
func floorSyncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	serr := unix.Fsync(fd)
	if err := unix.Close(fd); serr == nil {
		serr = err
	}
	return serr
}

// floorPairs builds the pairs the report and the benchmarks measure, each
// over a creds dir of its own under base.
func floorPairs(tb testing.TB, base string) []floorPair {
	tb.Helper()
	buf := make([]byte, 64<<10)
	var pairs []floorPair

	// ActiveSubscription: a readlink and a stat of the live path.
	m := floorManager(tb, base, 3)
	var st unix.Stat_t
	pairs = append(pairs, floorPair{
		name: "ActiveSubscription",
		credslots: func() error {
			if _, ok := m.ActiveSubscription(); !ok {
				return fmt.Errorf("no active sub")
			}
			return nil
		},
		floor: func() error {
			if _, err := unix.Readlink(m.live, buf); err != nil {
				return err
			}
			return unix.Stat(m.live, &st)
		},
	})

	// SlotIsFresh: one read of the slot.
	m1 := floorManager(tb, base, 3)
	pairs = append(pairs, floorPair{
		name: "SlotIsFresh",
		credslots: func() error {
			if ok, why := m1.SlotIsFresh("sub000"); !ok {
				return fmt.Errorf("not fresh: %s", why)
			}
			return nil
		},
		floor: func() error { return floorRead(m1.SlotPath("sub000"), buf) },
	})

	// DetectSlotIdentityDrift: one read of the slot and one of its sidecar.
	m2 := floorManager(tb, base, 3)
	pairs = append(pairs, floorPair{
		name: "DetectSlotIdentityDrift",
		credslots: func() error {
			info, err := m2.DetectSlotIdentityDrift("sub001")
			if err == nil && info.Drift {
				err = fmt.Errorf("drift: %s", info.Reason)
			}
			return err
		},
		floor: func() error {
			if err := floorRead(m2.SlotPath("sub001"), buf); err != nil {
				return err
			}
			return floorRead(m2.FingerprintPath("sub001"), buf)
		},
	})

	// DetectLiveSlotDrift, 3 slots: one read of the live path, one of each
	// slot.
	m3 := floorManager(tb, base, 3)
	pairs = append(pairs, floorPair{
		name: "DetectLiveSlotDrift, 3 slots",
		credslots: func() error {
			info, err := m3.DetectLiveSlotDrift()
			if err == nil && info.Drift {
				err = fmt.Errorf("drift")
			}
			return err
		},
		floor: func() error {
			if err := floorReadLive(m3.live, buf); err != nil {
				return err
			}
			for _, sub := range m3.subs {
				if err := floorRead(m3.slots[sub], buf); err != nil {
					return err
				}
			}
			return nil
		},
	})
	return append(pairs, switchPair(tb, base), bareSwitchPair(tb, base))
}

// switchPair is SwitchTo with Claude Code's locks (the default), between two
// captured slots of 3, beside its floor (switchFloor), under base.
func switchPair(tb testing.TB, base string) floorPair {
	tb.Helper()
	return switchPairBeside(tb, base, "SwitchTo with CLI locks", switchFloor)
}

// bareSwitchPair is switchPair beside a bare flip (bareSwitchFloor).
func bareSwitchPair(tb testing.TB, base string) floorPair {
	tb.Helper()
	return switchPairBeside(tb, base, "SwitchTo with CLI locks, beside a bare flip", bareSwitchFloor)
}

// switchPairBeside is the switch between two captured slots of 3, beside
// what floor builds in the same creds dir's neighbour.
func switchPairBeside(tb testing.TB, base, name string, floor func(testing.TB, *Manager, []string, []byte) func() error) floorPair {
	tb.Helper()
	m := floorManager(tb, base, 3)
	subs := []string{"sub000", "sub001"}
	i := 0
	return floorPair{
		name: name,
		credslots: func() error {
			i++
			_, err := m.SwitchTo(subs[i%2], "bench")
			return err
		},
		floor: floor(tb, m, subs, make([]byte, 64<<10)),
	}
}

// floorCredsDir makes the creds dir a floor of a switch works in, beside
// m's (its name m's with suffix): subs' slots and sidecars as m has them,
// the live symlink on the last, the private directory. It returns the
// dir, its live path, and the slots' and sidecars' paths in subs' order.
func floorCredsDir(tb testing.TB, m *Manager, subs []string, suffix string) (dir, live string, slots, sidecars []string) {
	tb.Helper()
	dir = filepath.Join(filepath.Dir(m.dir), filepath.Base(m.dir)+suffix)
	if err := os.MkdirAll(filepath.Join(dir, privateDirName), 0o700); err != nil {
		tb.Fatal(err)
	}
	live = filepath.Join(dir, filepath.Base(m.live))
	for _, sub := range subs {
		slot := filepath.Join(dir, filepath.Base(m.SlotPath(sub)))
		writeSlot(tb, slot, fresh, "rt-"+sub)
		side, err := os.ReadFile(m.FingerprintPath(sub))
		if err != nil {
			tb.Fatal(err)
		}
		sidecar := filepath.Join(dir, filepath.Base(m.FingerprintPath(sub)))
		if err := os.WriteFile(sidecar, side, 0o600); err != nil {
			tb.Fatal(err)
		}
		slots, sidecars = append(slots, slot), append(sidecars, sidecar)
	}
	if err := os.Symlink(filepath.Base(slots[len(slots)-1]), live); err != nil {
		tb.Fatal(err)
	}
	return dir, live, slots, sidecars
}

// switchFloor is SwitchTo with Claude Code's locks at its floor, in m's
// creds dir (with files of its own, so that it never meets credslots'
// state): every system call the specified switch needs, each made once,
// directly, in credslots' order, and nothing else. Per section of the spec:
//
//   - 16: the package's lock file opened and flocked (2), closed at the end (1);
//   - 16, 22: the creds dir lstat'ed, proving the cached real path of the
//     legacy lock still names it (1); the refresh and legacy lock
//     directories made, each stat'ed for the birthtime the owner record
//     holds (4); the owner record created, written and closed (3: on Linux
//     every field can be produced, so 22 asks for it); the .claude.json
//     whose lock the change would take looked for (1, none here); the
//     storage-write lock made and stat'ed (2: 17's intent names each held
//     lock's identity, so that a killed change's are taken back at once);
//   - 23: the leases directory looked for (1, none here);
//   - 4, 20, 5: the target slot, its invalid mark (state.json, none here)
//     and its sidecar read (4 + 1 + 4);
//   - 6, 19: the live entry read through the link (4), its link read (1);
//   - 17: the journal opened, its size read (rotation past a documented
//     size), the intent appended and fsynced (4);
//   - 16: each held lock looked at before the live path changes (3);
//   - 7, 9: a temporary symlink exchanged with the live path, the entry
//     taken out read back, the creds dir fsynced, the temporary removed
//     (3 + 3 + 1);
//   - 17: the journal's done appended and the journal closed (2);
//   - 16, 22: each lock looked at before it is removed and removed, the
//     owner record read back and removed before the locks it speaks for
//     (6 + 5).
//
// 56 calls. What credslots makes beyond them is its own cost: as root, the
// owner lookups of the files it creates; the private directory's lstat; the
// read of the journal's last byte, which finds a torn tail; the new link's
// mtime on the done record, which a later heal compares; the owner
// record's chmod against the umask.
func switchFloor(tb testing.TB, m *Manager, subs []string, buf []byte) func() error {
	tb.Helper()
	dir, live, slots, sidecars := floorCredsDir(tb, m, subs, "-floor")
	private := filepath.Join(dir, privateDirName)
	lockFile := filepath.Join(private, "lock")
	journal := filepath.Join(private, journalName)
	state := filepath.Join(private, "state.json")
	leases := filepath.Join(private, leasesDirName)
	claudeJSON := filepath.Join(dir, claudeJSONName)
	tmp := filepath.Join(dir, "."+filepath.Base(live)+".tmp-link")
	refresh, legacy, storage := filepath.Join(dir, claudeRefreshLock), dir+lockSuffix, filepath.Join(dir, claudeStorageLock)
	owner := refresh + ".owner"
	record := []byte(`{"pid":123456,"procStart":"1234567","pidDomain":"linux:0123456789abcdef0123456789abcdef:pid:[4026531836]","pidSpace":"host#pid:[4026531836]","lockBirthtimeMs":`)
	intent := []byte(`{"time":"2026-01-01T00:00:00Z","op":"switch","phase":"intent","id":"0123456789abcdef","sub":"sub000","reason":"bench","cli_locks":true,"holder":{"pid":123456,"proc_start":"1234567","locks":[{"path":".oauth_refresh.lock","inode":1,"birth_sec":1,"birth_nsec":1}]}}` + "\n")
	done := []byte(`{"time":"2026-01-01T00:00:00Z","op":"switch","phase":"done","id":"0123456789abcdef","sub":"sub000","from":"sub001","live_mtime":"2026-01-01T00:00:00Z"}` + "\n")
	var st unix.Stat_t
	rec := make([]byte, 0, 512)
	var birthMs int64
	statx := func(path string) (err error) {
		birthMs, err = floorStatLock(path)
		return err
	}
	read := func(path string, follow bool) error {
		flags := unix.O_RDONLY | unix.O_CLOEXEC
		if !follow {
			flags |= unix.O_NOFOLLOW
		}
		fd, err := unix.Open(path, flags, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		_, err = unix.Read(fd, buf[:st.Size])
		return err
	}
	i := 0
	return func() error {
		i++
		slot, sidecar := slots[i%len(slots)], sidecars[i%len(slots)]
		lfd, err := unix.Open(lockFile, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		defer unix.Close(lfd)
		if err := unix.Flock(lfd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			return err
		}
		if err := unix.Lstat(dir, &st); err != nil {
			return err
		}
		if err := unix.Mkdir(refresh, 0o755); err != nil {
			return err
		}
		if err := statx(refresh); err != nil {
			return err
		}
		if err := unix.Mkdir(legacy, 0o755); err != nil {
			return err
		}
		if err := statx(legacy); err != nil {
			return err
		}
		rec = strconv.AppendInt(append(rec[:0], record...), birthMs, 10)
		rec = append(rec, '}')
		ofd, err := unix.Open(owner, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		if _, err := unix.Write(ofd, rec); err != nil {
			_ = unix.Close(ofd)
			return err
		}
		if err := unix.Close(ofd); err != nil {
			return err
		}
		if err := unix.Lstat(claudeJSON, &st); err != unix.ENOENT {
			return fmt.Errorf("lstat .claude.json: %v", err)
		}
		if err := unix.Mkdir(storage, 0o755); err != nil {
			return err
		}
		if err := statx(storage); err != nil {
			return err
		}
		if err := unix.Lstat(leases, &st); err != unix.ENOENT {
			return fmt.Errorf("lstat leases: %v", err)
		}
		if err := read(slot, false); err != nil {
			return err
		}
		if _, err := unix.Open(state, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0); err != unix.ENOENT {
			return fmt.Errorf("open state.json: %v", err)
		}
		if err := read(sidecar, false); err != nil {
			return err
		}
		if err := read(live, true); err != nil {
			return err
		}
		if _, err := unix.Readlink(live, buf); err != nil {
			return err
		}
		jfd, err := unix.Open(journal, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		defer unix.Close(jfd)
		if err := unix.Fstat(jfd, &st); err != nil {
			return err
		}
		if _, err := unix.Write(jfd, intent); err != nil {
			return err
		}
		if err := unix.Fsync(jfd); err != nil {
			return err
		}
		for _, l := range []string{refresh, legacy, storage} {
			if err := statx(l); err != nil {
				return err
			}
		}
		if err := unix.Symlink(filepath.Base(slot), tmp); err != nil {
			return err
		}
		if err := floorExchange(tmp, live); err != nil {
			return err
		}
		if floorExchanges {
			if _, err := unix.Readlink(tmp, buf); err != nil {
				return err
			}
		}
		if err := floorSyncDir(dir); err != nil {
			return err
		}
		if floorExchanges {
			if err := unix.Unlink(tmp); err != nil {
				return err
			}
		}
		if _, err := unix.Write(jfd, done); err != nil {
			return err
		}
		if err := statx(storage); err != nil {
			return err
		}
		if err := unix.Rmdir(storage); err != nil {
			return err
		}
		if err := read(owner, false); err != nil {
			return err
		}
		if err := unix.Unlink(owner); err != nil {
			return err
		}
		for _, l := range []string{legacy, refresh} {
			if err := statx(l); err != nil {
				return err
			}
			if err := unix.Rmdir(l); err != nil {
				return err
			}
		}
		return nil
	}
}

// bareSwitchFloor is a bare flip between subs, in m's creds dir (with files
// of its own, so that it never meets credslots' state): the package's lock
// file opened and flocked; the three lock directories made; the target
// slot and the live entry read; the journal's intent appended and fsynced;
// a symlink renamed over the live path and the creds dir fsynced; the
// journal's done appended; the lock directories removed and the lock file
// closed. 29 calls. It is what a switch without the checks and records of
// sections 7, 16 to 19 and 21 to 23 of the spec would make: a reference,
// not the floor of SwitchTo.
func bareSwitchFloor(tb testing.TB, m *Manager, subs []string, buf []byte) func() error {
	tb.Helper()
	dir, live, slots, _ := floorCredsDir(tb, m, subs, "-bare")
	lockFile := filepath.Join(dir, privateDirName, "lock")
	journal := filepath.Join(dir, privateDirName, journalName)
	tmp := filepath.Join(dir, "."+filepath.Base(live)+".tmp-link")
	lockDirs := []string{
		filepath.Join(dir, claudeRefreshLock),
		dir + lockSuffix,
		filepath.Join(dir, claudeStorageLock),
	}
	intent := []byte(`{"time":"2026-01-01T00:00:00Z","op":"switch","phase":"intent","id":"0123456789abcdef","sub":"sub000","reason":"bench"}` + "\n")
	done := []byte(`{"time":"2026-01-01T00:00:00Z","op":"switch","phase":"done","id":"0123456789abcdef","sub":"sub000","from":"sub001"}` + "\n")
	i := 0
	return func() error {
		i++
		target := slots[i%len(slots)]
		lfd, err := unix.Open(lockFile, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		defer unix.Close(lfd)
		if err := unix.Flock(lfd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			return err
		}
		for _, d := range lockDirs {
			if err := unix.Mkdir(d, 0o755); err != nil {
				return err
			}
		}
		if err := floorRead(target, buf); err != nil {
			return err
		}
		if err := floorReadLive(live, buf); err != nil {
			return err
		}
		if err := floorAppend(journal, intent, true); err != nil {
			return err
		}
		if err := unix.Symlink(filepath.Base(target), tmp); err != nil {
			return err
		}
		if err := unix.Rename(tmp, live); err != nil {
			return err
		}
		if err := floorSyncDir(dir); err != nil {
			return err
		}
		if err := floorAppend(journal, done, false); err != nil {
			return err
		}
		for j := len(lockDirs) - 1; j >= 0; j-- {
			if err := unix.Rmdir(lockDirs[j]); err != nil {
				return err
			}
		}
		return nil
	}
}

// BenchmarkFloor runs each operation and its floor, side by side.
func BenchmarkFloor(b *testing.B) {
	pairs := floorPairs(b, floorBaseDir(b))
	for _, p := range pairs {
		for _, side := range []struct {
			name string
			op   func() error
		}{{"credslots", p.credslots}, {"floor", p.floor}} {
			b.Run(strings.ReplaceAll(p.name, " ", "_")+"/"+side.name, func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					if err := side.op(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestFloorPairs runs each side of each pair a few times: a floor that
// stopped doing its operation (or an operation that started failing) fails
// here rather than in a report.
func TestFloorPairs(t *testing.T) {
	for _, p := range floorPairs(t, t.TempDir()) {
		for i := 0; i < 4; i++ {
			require.NoError(t, p.credslots(), "%s, credslots", p.name)
			require.NoError(t, p.floor(), "%s, floor", p.name)
		}
	}
}
