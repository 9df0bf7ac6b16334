//go:build unix

package credslots

// Hostile files (SPEC §18, §4): FIFOs, devices and huge files where a
// credential, sidecar, journal or busy-signal file is expected; writes
// through a symlinked directory; permission errors; and the reference's
// edge cases. Everything that could block runs in a goroutine and fails the
// test after 2 s instead of hanging the suite.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gptme/credslots/internal/disk"
	"github.com/gptme/credslots/internal/jsonscan"
)

// hangLimit is how long an operation may block before the test fails;
// quickLimit is how long it may take at all.
const (
	hangLimit  = 2 * time.Second
	quickLimit = time.Second
)

// unblockFIFO opens a FIFO for reading and writing (which never blocks on
// Linux) and closes it, waking anything blocked opening or reading it.
func unblockFIFO(path string) {
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_NONBLOCK, 0)
	if err == nil {
		_ = syscall.Close(fd)
	}
}

// within runs fn in a goroutine and fails the test when it has not returned
// after hangLimit (waking the FIFOs so the goroutine can end), or when it
// took longer than quickLimit.
func within(t *testing.T, what string, fifos []string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
		if d := time.Since(start); d > quickLimit {
			t.Errorf("%s took %v, want < %v", what, d, quickLimit)
		}
	case <-time.After(hangLimit):
		for _, p := range fifos {
			unblockFIFO(p)
		}
		t.Fatalf("%s did not return within %v: it blocks on a FIFO", what, hangLimit)
	}
}

// mkfifo makes a FIFO at path, creating its directory.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	_ = os.Remove(path)
	require.NoError(t, syscall.Mkfifo(path, 0o600))
}

// assertNotRegularErr checks that err, when not nil, names the FIFO problem.
func assertNotRegularErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		assert.Contains(t, err.Error(), "not a regular file", "%s: %v", what, err)
	}
}

// hasProblem reports whether some problem contains every one of words.
func hasProblem(problems []string, words ...string) bool {
	for _, p := range problems {
		all := true
		for _, w := range words {
			all = all && strings.Contains(p, w)
		}
		if all {
			return true
		}
	}
	return false
}

// fifoFixture is a fixture with fresh bob and alice slots and the live path
// linked to alice.
func fifoFixture(t *testing.T, opts ...Option) *fixture {
	f := newFixture(t, append([]Option{WithLockTimeout(500 * time.Millisecond)}, opts...)...)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "alice")
	return f
}

func TestHostileFIFOs(t *testing.T) {
	t.Run("live", func(t *testing.T) {
		f := fifoFixture(t)
		fifo := f.m.LivePath()
		mkfifo(t, fifo)
		fifos := []string{fifo}

		var st Status
		var serr error
		within(t, "Status", fifos, func() { st, serr = f.m.Status() })
		require.NoError(t, serr)
		assert.False(t, st.Healthy)
		assert.True(t, hasProblem(st.Problems, "not a regular file"), "problems: %q", st.Problems)

		var derr error
		within(t, "DetectLiveSlotDrift", fifos, func() { _, derr = f.m.DetectLiveSlotDrift() })
		require.Error(t, derr)
		assert.Contains(t, derr.Error(), "not a regular file")

		var ok bool
		within(t, "SlotIsFresh", fifos, func() { ok, _ = f.m.SlotIsFresh("bob") })
		assert.True(t, ok, "a FIFO live path does not touch the slots")

		var werr error
		within(t, "SwitchTo", fifos, func() { _, werr = f.m.SwitchTo("bob", "r") })
		require.Error(t, werr)
		assertNotRegularErr(t, "SwitchTo", werr)

		var herr error
		within(t, "HealDriftTo", fifos, func() { _, herr = f.m.HealDriftTo("bob") })
		require.Error(t, herr)
		assertNotRegularErr(t, "HealDriftTo", herr)

		var cerr error
		within(t, "CaptureSlotFingerprint", fifos, func() { _, cerr = f.m.CaptureSlotFingerprint("bob") })
		assert.NoError(t, cerr, "capturing bob reads only bob's slot")

		var jerr error
		within(t, "Journal", fifos, func() { _, jerr = f.m.Journal() })
		assert.NoError(t, jerr)
		fi, err := os.Lstat(fifo)
		require.NoError(t, err)
		assert.Equal(t, fs.ModeNamedPipe, fi.Mode().Type(), "the FIFO is left alone")
	})

	t.Run("slot", func(t *testing.T) {
		f := fifoFixture(t)
		fifo := f.slot("bob")
		mkfifo(t, fifo)
		fifos := []string{fifo}

		var st Status
		var serr error
		within(t, "Status", fifos, func() { st, serr = f.m.Status() })
		require.NoError(t, serr)
		assert.False(t, st.Healthy)
		assert.True(t, hasProblem(st.Problems, "bob", "not a regular file"), "a FIFO slot is a problem: %q", st.Problems)
		require.Len(t, st.Slots, 3)
		assert.True(t, st.Slots[0].Exists)
		assert.False(t, st.Slots[0].Fresh)

		var info *DriftInfo
		var derr error
		within(t, "DetectLiveSlotDrift", fifos, func() { info, derr = f.m.DetectLiveSlotDrift() })
		require.NoError(t, derr)
		require.NotNil(t, info)
		assert.Equal(t, "alice", info.MatchingSlot)
		assert.NotContains(t, info.SlotHashes, "bob")

		var ok bool
		var why string
		within(t, "SlotIsFresh", fifos, func() { ok, why = f.m.SlotIsFresh("bob") })
		assert.False(t, ok)
		assert.Contains(t, why, filepath.Base(fifo))
		within(t, "package SlotIsFresh", fifos, func() { ok, why = SlotIsFresh(fifo, DefaultGrace, testNow) })
		assert.False(t, ok)
		assert.NotContains(t, why, "slot missing", "a FIFO exists")
		within(t, "ReadSlotExpiry", fifos, func() { _, ok = ReadSlotExpiry(fifo) })
		assert.False(t, ok)

		var werr error
		within(t, "SwitchTo", fifos, func() { _, werr = f.m.SwitchTo("bob", "r") })
		require.Error(t, werr)
		assert.Contains(t, werr.Error(), "not a regular file", "SwitchTo's error names the FIFO slot")

		var cerr error
		within(t, "CaptureSlotFingerprint", fifos, func() { _, cerr = f.m.CaptureSlotFingerprint("bob") })
		assertNotRegularErr(t, "CaptureSlotFingerprint", cerr)

		var jerr error
		within(t, "Journal", fifos, func() { _, jerr = f.m.Journal() })
		assert.NoError(t, jerr)

		f.refresh(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"))
		var herr error
		within(t, "HealDriftTo", fifos, func() { _, herr = f.m.HealDriftTo("bob") })
		require.Error(t, herr)
		assert.Contains(t, herr.Error(), "not a regular file")
	})

	t.Run("sidecar", func(t *testing.T) {
		f := fifoFixture(t)
		fifo := f.m.FingerprintPath("bob")
		mkfifo(t, fifo)
		fifos := []string{fifo}

		var st Status
		var serr error
		within(t, "Status", fifos, func() { st, serr = f.m.Status() })
		require.NoError(t, serr)
		assert.False(t, st.Healthy)
		assert.True(t, hasProblem(st.Problems, "bob", "not a regular file"), "problems: %q", st.Problems)

		var derr error
		within(t, "DetectLiveSlotDrift", fifos, func() { _, derr = f.m.DetectLiveSlotDrift() })
		assert.NoError(t, derr)

		var ok bool
		within(t, "SlotIsFresh", fifos, func() { ok, _ = f.m.SlotIsFresh("bob") })
		assert.True(t, ok)

		var werr error
		within(t, "SwitchTo", fifos, func() { _, werr = f.m.SwitchTo("bob", "r") })
		require.Error(t, werr, "an unreadable sidecar cannot vouch for the slot's identity")
		assert.Contains(t, werr.Error(), "not a regular file")

		f.refresh(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"))
		var herr error
		within(t, "HealDriftTo", fifos, func() { _, herr = f.m.HealDriftTo("bob") })
		// Claude Code's identity rotates with a refresh, so a heal does not
		// consult the sidecar; it may replace it with a regular one.
		assertNotRegularErr(t, "HealDriftTo", herr)

		var jerr error
		within(t, "Journal", fifos, func() { _, jerr = f.m.Journal() })
		assert.NoError(t, jerr)

		var cerr error
		within(t, "CaptureSlotFingerprint", fifos, func() { _, cerr = f.m.CaptureSlotFingerprint("bob") })
		assertNotRegularErr(t, "CaptureSlotFingerprint", cerr)
	})

	t.Run("journal", func(t *testing.T) {
		f := fifoFixture(t)
		fifo := f.m.journalPath()
		mkfifo(t, fifo)
		fifos := []string{fifo}

		var jerr error
		within(t, "Journal", fifos, func() { _, jerr = f.m.Journal() })
		require.Error(t, jerr)
		assert.Contains(t, jerr.Error(), "not a regular file")
		var ok bool
		within(t, "LastActive", fifos, func() { _, ok = f.m.LastActive() })
		assert.False(t, ok)

		var serr error
		within(t, "Status", fifos, func() { _, serr = f.m.Status() })
		assert.NoError(t, serr)
		var derr error
		within(t, "DetectLiveSlotDrift", fifos, func() { _, derr = f.m.DetectLiveSlotDrift() })
		assert.NoError(t, derr)
		within(t, "SlotIsFresh", fifos, func() { ok, _ = f.m.SlotIsFresh("bob") })
		assert.True(t, ok)

		var werr error
		within(t, "SwitchTo", fifos, func() { _, werr = f.m.SwitchTo("bob", "r") })
		require.Error(t, werr, "a change that cannot be journaled is not made")
		assert.Contains(t, werr.Error(), "not a regular file")
		assert.Equal(t, f.m.symlinkTarget("alice"), f.readlink(t))

		var cerr error
		within(t, "CaptureSlotFingerprint", fifos, func() { _, cerr = f.m.CaptureSlotFingerprint("bob") })
		require.Error(t, cerr)
		assert.Contains(t, cerr.Error(), "not a regular file")

		f.refresh(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"))
		var herr error
		within(t, "HealDriftTo", fifos, func() { _, herr = f.m.HealDriftTo("bob") })
		require.Error(t, herr)
		assert.Contains(t, herr.Error(), "not a regular file")
		within(t, "HealDrift", fifos, func() { _, herr = f.m.HealDrift() })
		require.Error(t, herr)
		assert.Contains(t, herr.Error(), "not a regular file")
		fi, err := os.Lstat(fifo)
		require.NoError(t, err)
		assert.Equal(t, fs.ModeNamedPipe, fi.Mode().Type(), "the FIFO journal is not replaced")
	})

	t.Run("busy-signal", func(t *testing.T) {
		busy := t.TempDir()
		fifo := filepath.Join(busy, "claude-busy.lock")
		mkfifo(t, fifo)
		fifos := []string{fifo}
		guard := GlobLockGuard(filepath.Join(busy, "*.lock"))
		var names []string
		within(t, "GlobLockGuard", fifos, func() { names = guard() })
		assert.Equal(t, []string{"claude-busy"}, names, "a FIFO busy-signal is reported, never read")

		f := fifoFixture(t, WithLockGuard(guard))
		var res SwitchResult
		var werr error
		within(t, "SwitchTo", fifos, func() { res, werr = f.m.SwitchTo("bob", "r") })
		require.ErrorIs(t, werr, ErrDeferred)
		assert.Equal(t, []string{"claude-busy"}, res.DeferredLocks)
	})
}

// allocated returns the bytes fn allocated.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

const allocLimit = 4 << 20

func TestHostileUnboundedReads(t *testing.T) {
	t.Run("dev-zero", func(t *testing.T) {
		f := fifoFixture(t)
		require.NoError(t, os.Remove(f.slot("bob")))
		require.NoError(t, os.Symlink("/dev/zero", f.slot("bob")))

		var ok bool
		var why string
		within(t, "SlotIsFresh", nil, func() {
			n := allocated(func() { ok, why = f.m.SlotIsFresh("bob") })
			assert.Less(t, n, uint64(allocLimit), "SlotIsFresh on /dev/zero allocated %d bytes", n)
		})
		assert.False(t, ok)
		assert.NotContains(t, why, "slot missing")

		_, err := disk.ReadRegular(f.slot("bob"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "not a regular file")

		var st Status
		within(t, "Status", nil, func() {
			n := allocated(func() { st, err = f.m.Status() })
			assert.Less(t, n, uint64(allocLimit), "Status allocated %d bytes", n)
		})
		require.NoError(t, err)
		assert.True(t, hasProblem(st.Problems, "bob", "not a regular file"), "problems: %q", st.Problems)

		require.NoError(t, os.Remove(f.m.LivePath()))
		require.NoError(t, os.Symlink("/dev/zero", f.m.LivePath()))
		within(t, "DetectLiveSlotDrift", nil, func() {
			n := allocated(func() { _, err = f.m.DetectLiveSlotDrift() })
			assert.Less(t, n, uint64(allocLimit), "DetectLiveSlotDrift allocated %d bytes", n)
		})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "not a regular file")
	})

	t.Run("sparse-2GB", func(t *testing.T) {
		f := fifoFixture(t)
		big := f.slot("bob")
		require.NoError(t, os.Truncate(big, 2<<30))

		_, err := disk.ReadRegular(big)
		require.ErrorIs(t, err, ErrTooLarge)
		assert.Contains(t, err.Error(), big)
		assert.Contains(t, err.Error(), "1048576")

		var ok bool
		within(t, "SlotIsFresh", nil, func() {
			n := allocated(func() { ok, _ = f.m.SlotIsFresh("bob") })
			assert.Less(t, n, uint64(allocLimit), "SlotIsFresh allocated %d bytes", n)
			n = allocated(func() { ok, _ = SlotIsFresh(big, DefaultGrace, testNow) })
			assert.Less(t, n, uint64(allocLimit), "package SlotIsFresh allocated %d bytes", n)
		})
		assert.False(t, ok)

		var st Status
		within(t, "Status", nil, func() {
			n := allocated(func() { st, err = f.m.Status() })
			assert.Less(t, n, uint64(allocLimit), "Status allocated %d bytes", n)
		})
		require.NoError(t, err)
		assert.True(t, hasProblem(st.Problems, "bob"), "an oversized slot is a problem: %q", st.Problems)

		var info *DriftInfo
		within(t, "DetectLiveSlotDrift", nil, func() {
			n := allocated(func() { info, err = f.m.DetectLiveSlotDrift() })
			assert.Less(t, n, uint64(allocLimit), "DetectLiveSlotDrift allocated %d bytes", n)
		})
		require.NoError(t, err)
		assert.NotContains(t, info.SlotHashes, "bob")

		// HealDriftTo reads the slot before backing it up: an error naming
		// the path and the limit.
		f.refresh(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"))
		within(t, "HealDriftTo", nil, func() { _, err = f.m.HealDriftTo("bob") })
		require.ErrorIs(t, err, ErrTooLarge)
		assert.Contains(t, err.Error(), big)
		assert.Contains(t, err.Error(), "1048576")
		fi, serr := os.Stat(big)
		require.NoError(t, serr)
		assert.Equal(t, int64(2<<30), fi.Size(), "the oversized slot is left alone")

		// A live path that is (or links to) an oversized file.
		require.NoError(t, os.Remove(f.m.LivePath()))
		require.NoError(t, os.Symlink(filepath.Base(big), f.m.LivePath()))
		within(t, "DetectLiveSlotDrift live", nil, func() {
			n := allocated(func() { _, err = f.m.DetectLiveSlotDrift() })
			assert.Less(t, n, uint64(allocLimit), "DetectLiveSlotDrift allocated %d bytes", n)
		})
		require.ErrorIs(t, err, ErrTooLarge)
		assert.Contains(t, err.Error(), "1048576")
	})
}

// dirState maps every entry under dir to its kind and content, for a
// before/after comparison.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case d.IsDir():
			out[rel] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			require.NoError(t, err)
			out[rel] = "symlink -> " + target
		default:
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			out[rel] = "file " + string(data)
		}
		return nil
	}))
	return out
}

// containmentFixture has its slots and sidecars under <dir>/slots, a symlink
// to another directory that holds the slots.
func containmentFixture(t *testing.T) (*fixture, string) {
	t.Helper()
	other := t.TempDir()
	f := newFixture(t, WithSlotTemplate("slots/{sub}.json"), WithFingerprintTemplate("slots/{sub}.fp.json"))
	require.NoError(t, os.Symlink(other, filepath.Join(f.dir, "slots")))
	writeSlot(t, filepath.Join(other, "bob.json"), fresh, "rt-bob")
	writeSlot(t, filepath.Join(other, "alice.json"), fresh, "rt-alice")
	return f, other
}

func TestHostileContainment(t *testing.T) {
	t.Run("heal", func(t *testing.T) {
		f, other := containmentFixture(t)
		f.refresh(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"))
		before := dirState(t, other)
		_, err := f.m.HealDriftTo("bob")
		require.Error(t, err, "a heal must not write through a symlinked directory")
		assert.Contains(t, err.Error(), "symlink")
		assert.Equal(t, before, dirState(t, other))
	})
	t.Run("heal-with-existing-prev", func(t *testing.T) {
		f, other := containmentFixture(t)
		writeSlot(t, filepath.Join(other, "bob.json.prev"), fresh, "rt-bob-0")
		f.refresh(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"))
		before := dirState(t, other)
		_, err := f.m.HealDriftTo("bob")
		require.Error(t, err, "a heal must not write through a symlinked directory")
		assert.Contains(t, err.Error(), "symlink")
		assert.Equal(t, before, dirState(t, other), "nothing in the other directory is moved, created or changed")
	})
	t.Run("capture", func(t *testing.T) {
		f, other := containmentFixture(t)
		before := dirState(t, other)
		_, err := f.m.CaptureSlotFingerprint("bob")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "symlink")
		assert.Equal(t, before, dirState(t, other))
	})
	t.Run("switch", func(t *testing.T) {
		f, other := containmentFixture(t)
		before := dirState(t, other)
		res, err := f.m.SwitchTo("bob", "r")
		if err != nil {
			assert.Contains(t, err.Error(), "symlink")
		} else {
			assert.True(t, res.OK)
			assert.Contains(t, f.logs.String(), "symlink", "the refused capture is logged")
		}
		assert.Equal(t, before, dirState(t, other), "no sidecar is written through the symlinked directory")
	})
	t.Run("restore", func(t *testing.T) {
		f, other := containmentFixture(t)
		f.link(t, "alice")
		// A forced switch away from a drifted live file makes a backup.
		f.refresh(t, claudeDoc(fresh.Add(time.Hour), "rt-x"))
		_, _ = f.m.SwitchTo("alice", "r", Force())
		backups, err := f.m.Backups()
		require.NoError(t, err)
		before := dirState(t, other)
		for _, b := range backups {
			if b.Sub == "" {
				err := f.m.Restore(b.Name, "bob")
				require.Error(t, err, "a restore must not write through a symlinked directory")
				assert.Contains(t, err.Error(), "symlink")
			}
		}
		assert.Equal(t, before, dirState(t, other))
	})
}

// permFS denies reading one file, as the OS does for a file the process may
// not read.
type permFS struct {
	disk.FS
	deny string
}

func (p permFS) ReadFile(name string) ([]byte, error) {
	if name == p.deny {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return p.FS.ReadFile(name)
}

func (p permFS) ReadFileMode(name string) ([]byte, fs.FileMode, error) {
	if name == p.deny {
		return nil, 0, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return p.FS.ReadFileMode(name)
}

func (p permFS) ReadFileInto(name string, buf []byte) ([]byte, error) {
	if name == p.deny {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return p.FS.ReadFileInto(name, buf)
}

func TestHostilePermissionDenied(t *testing.T) {
	dir := t.TempDir()
	m := plainManager(t, dir, withFS(permFS{FS: disk.OS{}, deny: filepath.Join(dir, ".credentials.json.bob")}))
	writeSlot(t, m.SlotPath("bob"), fresh, "rt-bob")
	writeSlot(t, m.SlotPath("alice"), fresh, "rt-alice")
	require.NoError(t, os.Symlink(".credentials.json.alice", m.LivePath()))

	ok, why := m.SlotIsFresh("bob")
	assert.False(t, ok)
	assert.Equal(t, "permission denied reading .credentials.json.bob", why)

	st, err := m.Status()
	require.NoError(t, err)
	assert.False(t, st.Healthy)
	assert.True(t, hasProblem(st.Problems, "bob", "permission"), "problems: %q", st.Problems)
	assert.Equal(t, "permission denied reading .credentials.json.bob", st.Slots[0].FreshReason)
	assert.True(t, st.Slots[0].Exists)

	res, err := m.SwitchTo("bob", "r")
	require.Error(t, err)
	assert.False(t, res.OK)
	assert.Contains(t, err.Error(), "permission denied")
	assert.NotContains(t, err.Error(), "unreadable or no expiresAt")
}

// envPermChild names the slot the re-executed test binary reads as an
// unprivileged user.
const envPermChild = "CREDSLOTS_HOSTILE_PERM_SLOT"

// TestHostilePermissionChild runs only in the re-executed binary.
func TestHostilePermissionChild(t *testing.T) {
	path := os.Getenv(envPermChild)
	if path == "" {
		t.Skip("helper for TestHostilePermissionDeniedForReal")
	}
	_, why := SlotIsFresh(path, DefaultGrace, testNow)
	_, rerr := disk.ReadRegular(path)
	fmt.Printf("REASON=%s\nERRPERM=%v\nUID=%d\n", why, errors.Is(rerr, fs.ErrPermission), os.Geteuid())
}

func TestHostilePermissionDeniedForReal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test drops to uid 65534 to read a root-owned 0600 slot")
	}
	if os.Getenv(envPermChild) != "" {
		t.Skip("in the child")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	// Both the binary and the slot must be reachable by uid 65534.
	pub, err := os.MkdirTemp("", "credslots-perm-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(pub) })
	require.NoError(t, os.Chmod(pub, 0o755))
	bin := filepath.Join(pub, "credslots.test")
	src, err := os.Open(exe)
	require.NoError(t, err)
	dst, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
	require.NoError(t, src.Close())
	slot := filepath.Join(pub, ".credentials.json.bob")
	writeSlot(t, slot, fresh, "rt-bob")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^TestHostilePermissionChild$", "-test.count=1")
	cmd.Dir = pub
	cmd.Env = append(os.Environ(), envPermChild+"="+slot)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "UID=65534\n")
	assert.Contains(t, string(out), "ERRPERM=true\n", "%s", out)
	assert.Contains(t, string(out), "REASON=permission denied reading .credentials.json.bob\n", "%s", out)
}

// msDecimal writes t as exact Unix milliseconds with a nanosecond fraction.
func msDecimal(t time.Time) string {
	ns := big.NewInt(t.Unix())
	ns.Mul(ns, big.NewInt(1e9))
	ns.Add(ns, big.NewInt(int64(t.Nanosecond())))
	q, r := new(big.Int).DivMod(ns, big.NewInt(1e6), new(big.Int))
	return fmt.Sprintf("%s.%06d", q, r.Int64())
}

// trueAgeMinutes is the whole minutes from the expiry num (Unix
// milliseconds, an exact decimal) to now: floor((now − num) / 1 min).
func trueAgeMinutes(t *testing.T, num string, now time.Time) string {
	t.Helper()
	exp, ok := new(big.Rat).SetString(num)
	require.True(t, ok, num)
	nowMs := new(big.Rat).SetFrac(new(big.Int).Add(new(big.Int).Mul(big.NewInt(now.Unix()), big.NewInt(1e9)), big.NewInt(int64(now.Nanosecond()))), big.NewInt(1e6))
	age := new(big.Rat).Sub(nowMs, exp)
	age.Quo(age, new(big.Rat).SetInt64(60000))
	q := new(big.Int).Div(age.Num(), age.Denom()) // Euclidean: floor for a positive denominator
	return q.String()
}

// rawDoc is a Claude Code credential whose expiresAt is the literal num.
func rawDoc(num string) []byte {
	return []byte(`{"claudeAiOauth":{"accessToken":"at","refreshToken":"rt","expiresAt":` + num + `}}`)
}

func TestHostileReferenceEdges(t *testing.T) {
	// The true ages of year-1 expiries, in whole minutes, computed apart
	// from the package with exact rationals.
	year1 := trueAgeMinutes(t, "-62135596800000", testNow)
	year1frac := trueAgeMinutes(t, "-62135596799999.5", testNow)
	require.Equal(t, "1065047760", year1)

	now := time.Date(2026, 1, 1, 12, 0, 0, 123456789, time.UTC)
	grace := 5 * time.Minute
	edge := now.Add(grace)

	cases := []struct {
		name  string
		num   string
		now   time.Time
		fresh bool
		why   string
	}{
		{"year 1", "-62135596800000", testNow, false, fmt.Sprintf("expired %sm ago (at 0001-01-01T00:00:00Z)", year1)},
		{"year 1 fraction", "-62135596799999.5", testNow, false, fmt.Sprintf("expired %sm ago (at 0001-01-01T00:00:00Z)", year1frac)},
		{"year 9999", "253402300799999", testNow, true, "valid until 9999-12-31T23:59:59Z"},
		{"year 10000", "253402300800000", testNow, false, "unreadable or no expiresAt in slot"},
		{"before year 1", "-62135596800001", testNow, false, "unreadable or no expiresAt in slot"},
		{"exactly now+grace", msDecimal(edge), now, false, fmt.Sprintf("expires within grace (300s left, at %s)", formatTime(edge))},
		{"exactly now+grace, trailing zeros", msDecimal(edge) + "000", now, false, fmt.Sprintf("expires within grace (300s left, at %s)", formatTime(edge))},
		{"exactly now+grace, exponent", strings.Replace(msDecimal(edge), ".", "", 1) + "e-6", now, false, fmt.Sprintf("expires within grace (300s left, at %s)", formatTime(edge))},
		{"1ns after now+grace", msDecimal(edge.Add(time.Nanosecond)), now, true, "valid until " + formatTime(edge)},
		{"0.1ns after now+grace", msDecimal(edge) + "0001", now, true, "valid until " + formatTime(edge)},
		{"1ns before now+grace", msDecimal(edge.Add(-time.Nanosecond)), now, false, fmt.Sprintf("expires within grace (299s left, at %s)", formatTime(edge))},
		{"exactly now", msDecimal(now), now, false, fmt.Sprintf("expired 0m ago (at %s)", formatTime(now))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "slot")
			writeFile(t, path, rawDoc(tc.num))
			ok, why := SlotIsFresh(path, grace, tc.now)
			assert.Equal(t, tc.fresh, ok, "expiresAt %s", tc.num)
			assert.Equal(t, tc.why, why, "expiresAt %s", tc.num)
		})
	}
}

func TestHostileExactParse(t *testing.T) {
	cases := []struct {
		num  string
		want time.Time
	}{
		{"1767225600000.0000000001", time.Unix(1767225600, 1)},
		{"1.7672256e12", time.Unix(1767225600, 0)},
		{"17672256e5", time.Unix(1767225600, 0)},
		{"17672256E+5", time.Unix(1767225600, 0)},
		{"1767225600000.000001", time.Unix(1767225600, 1)},
		{"1767225600000.0000015", time.Unix(1767225600, 2)},
		{"-1.5", time.Unix(0, -1500000)},
		{"-0.0000001", time.Unix(0, 0)},
		{"0.0000001", time.Unix(0, 1)},
		{"1e-400", time.Unix(0, 1)},
		{"-62135596800000", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"253402300799999.999999", time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
	}
	for _, tc := range cases {
		got, ok := jsonscan.DecimalTime(tc.num, time.Millisecond)
		if assert.True(t, ok, tc.num) {
			assert.True(t, tc.want.Equal(got), "%s: got %s, want %s", tc.num, got.Format(time.RFC3339Nano), tc.want.UTC().Format(time.RFC3339Nano))
		}
		c := ClaudeCode.parse(rawDoc(tc.num))
		if assert.True(t, c.hasExpiry(), "%s: %s", tc.num, c.problem) {
			assert.True(t, tc.want.Equal(c.expiry), "%s: parsed %s", tc.num, c.expiry.Format(time.RFC3339Nano))
		}
		path := filepath.Join(t.TempDir(), "slot")
		writeFile(t, path, rawDoc(tc.num))
		exp, ok := ReadSlotExpiry(path)
		assert.True(t, ok && tc.want.Equal(exp), "ReadSlotExpiry(%s) = %s, %v", tc.num, exp, ok)
	}
	for _, num := range []string{"253402300799999.9999999", "1e23", "1e1000000000000", "-1e23"} {
		_, ok := jsonscan.DecimalTime(num, time.Millisecond)
		assert.False(t, ok, "%s is out of range", num)
	}
}

func TestHostileUnfollowablePaths(t *testing.T) {
	t.Run("slot symlink loop", func(t *testing.T) {
		f := fifoFixture(t)
		slot := f.slot("bob")
		require.NoError(t, os.Remove(slot))
		require.NoError(t, os.Symlink("loop-b", slot))
		require.NoError(t, os.Symlink(filepath.Base(slot), filepath.Join(f.dir, "loop-b")))
		ok, why := f.m.SlotIsFresh("bob")
		assert.False(t, ok)
		assert.Equal(t, "slot missing: .credentials.json.bob", why)
		ok, why = SlotIsFresh(slot, DefaultGrace, testNow)
		assert.False(t, ok)
		assert.Equal(t, "slot missing: .credentials.json.bob", why)
		_, err := f.m.SwitchTo("bob", "r", Force())
		assert.ErrorIs(t, err, ErrSlotMissing)
		st, err := f.m.Status()
		require.NoError(t, err)
		assert.False(t, st.Slots[0].Exists)
	})
	t.Run("slot through a regular file", func(t *testing.T) {
		f := newFixture(t, WithSlotTemplate("slots/{sub}.json"), WithFingerprintTemplate("{sub}.fp.json"))
		writeFile(t, filepath.Join(f.dir, "slots"), []byte("not a directory"))
		ok, why := f.m.SlotIsFresh("bob")
		assert.False(t, ok)
		assert.Equal(t, "slot missing: bob.json", why)
		ok, why = SlotIsFresh(f.slot("bob"), DefaultGrace, testNow)
		assert.False(t, ok)
		assert.Equal(t, "slot missing: bob.json", why)
		_, err := f.m.SwitchTo("bob", "r", Force())
		assert.ErrorIs(t, err, ErrSlotMissing)
	})
	t.Run("live symlink loop", func(t *testing.T) {
		f := fifoFixture(t)
		live := f.m.LivePath()
		require.NoError(t, os.Remove(live))
		require.NoError(t, os.Symlink("live-loop", live))
		require.NoError(t, os.Symlink(filepath.Base(live), filepath.Join(f.dir, "live-loop")))
		info, err := f.m.DetectLiveSlotDrift()
		require.NoError(t, err)
		require.NotNil(t, info)
		assert.True(t, info.Drift)
		assert.Equal(t, "", info.LiveHash)
		st, err := f.m.Status()
		require.NoError(t, err)
		assert.Equal(t, "broken-symlink", st.Live.Kind)
		res, err := f.m.SwitchTo("bob", "r")
		require.NoError(t, err, "a symlink holds no data: SwitchTo replaces it")
		assert.True(t, res.OK)
		assert.Equal(t, f.m.symlinkTarget("bob"), f.readlink(t))
	})
	for _, kind := range []string{"broken", "loop"} {
		t.Run("heal into a "+kind+" symlink slot", func(t *testing.T) {
			f := fifoFixture(t)
			slot := f.slot("bob")
			require.NoError(t, os.Remove(slot))
			target := filepath.Join(f.dir, "nowhere.json")
			require.NoError(t, os.Symlink(filepath.Base(target), slot))
			if kind == "loop" {
				require.NoError(t, os.Symlink(filepath.Base(slot), target))
			}
			doc := claudeDoc(fresh.Add(time.Hour), "rt-bob-2")
			f.refresh(t, doc)
			res, err := f.m.HealDriftTo("bob")
			require.NoError(t, err)
			assert.True(t, res.OK)
			fi, err := os.Lstat(slot)
			require.NoError(t, err)
			assert.True(t, fi.Mode().IsRegular(), "the slot is a regular file now")
			assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
			got, err := os.ReadFile(slot)
			require.NoError(t, err)
			assert.Equal(t, doc, got)
			if kind == "broken" {
				assert.NoFileExists(t, target, "the dangling target is not created")
			}
			assert.Equal(t, f.m.symlinkTarget("bob"), f.readlink(t))
		})
	}
}

// TestHostileFIFOListing keeps the FIFO sweep honest: a FIFO left in the
// private directory or beside the slots never blocks a change.
func TestHostileFIFOBesideSlots(t *testing.T) {
	f := fifoFixture(t)
	var fifos []string
	for _, name := range []string{".credentials.json.bob.prev", ".credentials.json.prev", "." + ".credentials.json.bob" + tmpMarker + "zz"} {
		p := filepath.Join(f.dir, name)
		mkfifo(t, p)
		fifos = append(fifos, p)
	}
	old := time.Now().Add(-time.Hour)
	for _, p := range fifos {
		require.NoError(t, os.Chtimes(p, old, old))
	}
	var err error
	within(t, "SwitchTo", fifos, func() { _, err = f.m.SwitchTo("bob", "r") })
	assertNotRegularErr(t, "SwitchTo", err)
	f.refresh(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"))
	within(t, "HealDriftTo", fifos, func() { _, err = f.m.HealDriftTo("bob") })
	assertNotRegularErr(t, "HealDriftTo", err)
	within(t, "Backups", fifos, func() { _, err = f.m.Backups() })
	assertNotRegularErr(t, "Backups", err)
	names := []string{}
	ents, _ := os.ReadDir(f.dir)
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	t.Logf("entries after: %s", strconv.Quote(strings.Join(names, " ")))
}

func TestCaptureOfAnUnreadableSlotIsAnError(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, os.WriteFile(f.slot("bob"), nil, 0o600))
	require.NoError(t, os.Truncate(f.slot("bob"), disk.MaxFileSize+1))
	_, err := f.m.CaptureSlotFingerprint("bob")
	require.ErrorIs(t, err, ErrTooLarge, "not \"nothing to capture\"")
	assert.NoDirExists(t, filepath.Join(f.dir, ".credslots"))
}
