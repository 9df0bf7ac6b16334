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
	return append(pairs, switchPair(tb, base))
}

// switchPair is SwitchTo with Claude Code's locks (the default), between two
// captured slots of 3, beside its floor, under base.
func switchPair(tb testing.TB, base string) floorPair {
	tb.Helper()
	// The floor: the package's lock file opened and flocked; the
	// three lock directories made; the target slot and the live entry read;
	// the journal's intent appended and fsynced; a symlink renamed over the
	// live path and the creds dir fsynced; the journal's done appended; the
	// lock directories removed and the lock file closed.
	m4 := floorManager(tb, base, 3)
	subs4 := []string{"sub000", "sub001"}
	i4 := 0
	return floorPair{
		name: "SwitchTo with CLI locks",
		credslots: func() error {
			i4++
			_, err := m4.SwitchTo(subs4[i4%2], "bench")
			return err
		},
		floor: switchFloor(tb, m4, subs4, make([]byte, 64<<10)),
	}
}

// switchFloor is a switch between subs at its floor, in m's creds dir (with
// files of its own, so that it never meets credslots' state).
func switchFloor(tb testing.TB, m *Manager, subs []string, buf []byte) func() error {
	tb.Helper()
	dir := filepath.Join(filepath.Dir(m.dir), filepath.Base(m.dir)+"-floor")
	if err := os.MkdirAll(filepath.Join(dir, privateDirName), 0o700); err != nil {
		tb.Fatal(err)
	}
	live := filepath.Join(dir, filepath.Base(m.live))
	slots := make([]string, len(subs))
	for i, sub := range subs {
		slots[i] = filepath.Join(dir, filepath.Base(m.SlotPath(sub)))
		writeSlot(tb, slots[i], fresh, "rt-"+sub)
	}
	if err := os.Symlink(filepath.Base(slots[len(slots)-1]), live); err != nil {
		tb.Fatal(err)
	}
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
		dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		serr := unix.Fsync(dfd)
		_ = unix.Close(dfd)
		if serr != nil {
			return serr
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
