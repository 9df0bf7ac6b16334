//go:build unix

package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runBounded is run that fails the test instead of hanging when the command
// blocks (on a FIFO), and when it takes a second or more.
func runBounded(t *testing.T, fifos []string, args ...string) result {
	t.Helper()
	ch := make(chan result, 1)
	start := time.Now()
	go func() { ch <- run(args...) }()
	select {
	case r := <-ch:
		assert.Less(t, time.Since(start), time.Second, "credslots %s took too long", strings.Join(args, " "))
		return r
	case <-time.After(2 * time.Second):
		for _, p := range fifos {
			// Opening both ends never blocks and wakes a blocked reader.
			if fd, err := syscall.Open(p, syscall.O_RDWR|syscall.O_NONBLOCK, 0); err == nil {
				_ = syscall.Close(fd)
			}
		}
		t.Fatalf("credslots %s did not finish within 2 s: it blocks on a FIFO", strings.Join(args, " "))
		return result{}
	}
}

func TestCommandWithFIFOSlot(t *testing.T) {
	for _, sub := range []string{"alice", "bob"} { // inactive, active
		t.Run(sub, func(t *testing.T) {
			dir := credsDir(t, testNow)
			fifo := filepath.Join(dir, ".credentials.json."+sub)
			require.NoError(t, os.Remove(fifo))
			require.NoError(t, syscall.Mkfifo(fifo, 0o600))
			fifos := []string{fifo}
			// status exits 0 with the problem listed (SPEC §15: "0, or 2 on
			// error"); check exits 1 on a problem.
			for _, args := range [][]string{
				{"--dir", dir, "--subs", "bob,alice,erik", "status"},
				{"--dir", dir, "--subs", "bob,alice,erik", "--json", "status"},
			} {
				r := runBounded(t, fifos, args...)
				assert.Contains(t, []int{0, 2}, r.code, "%v\n%s%s", args, r.stdout, r.stderr)
				if r.code == 0 {
					assert.Contains(t, r.stdout, "not a regular file", "%v: the problem names the FIFO", args)
				}
			}
			for _, args := range [][]string{
				{"--dir", dir, "--subs", "bob,alice,erik", "check"},
				{"--dir", dir, "--subs", "bob,alice,erik", "--json", "check"},
			} {
				r := runBounded(t, fifos, args...)
				assert.Contains(t, []int{1, 2}, r.code, "%v: a FIFO slot is a problem\n%s%s", args, r.stdout, r.stderr)
			}
			// Discovery skips what is not a regular file; it must not block.
			runBounded(t, fifos, "--dir", dir, "status")
			runBounded(t, fifos, "--dir", dir, "check")
			r := runBounded(t, fifos, "--dir", dir, "--subs", "bob,alice,erik", "switch", sub)
			assert.Contains(t, []int{1, 2}, r.code, r.stdout+r.stderr)
			fi, err := os.Lstat(fifo)
			require.NoError(t, err)
			assert.Equal(t, fs.ModeNamedPipe, fi.Mode().Type(), "the FIFO is left alone")
		})
	}
}

// replaceLive simulates a CLI refresh as another user: a new regular file
// renamed over the live path, owned by uid:gid, written a second later.
func replaceLive(t *testing.T, dir string, doc []byte, uid, gid int) {
	t.Helper()
	live := filepath.Join(dir, ".credentials.json")
	tmp := live + ".cli-tmp"
	require.NoError(t, os.WriteFile(tmp, doc, 0o600))
	require.NoError(t, os.Chown(tmp, uid, gid))
	require.NoError(t, os.Rename(tmp, live))
	later := time.Now().Add(time.Second)
	require.NoError(t, os.Chtimes(live, later, later))
}

func TestCommandAsRootKeepsTheOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: checks that files created in another user's creds dir get that user as owner")
	}
	const uid, gid = 65534, 65534
	dir := credsDir(t, testNow)
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	}))

	step := func(args ...string) {
		t.Helper()
		r := runBounded(t, nil, append([]string{"--dir", dir}, args...)...)
		require.Equal(t, 0, r.code, "credslots %v:\n%s%s", args, r.stdout, r.stderr)
	}
	step("switch", "bob")
	step("capture", "bob")
	replaceLive(t, dir, cred(testNow.Add(8*time.Hour), "rt-bob-2"), uid, gid)
	step("heal", "--auto")
	replaceLive(t, dir, cred(testNow.Add(9*time.Hour), "rt-bob-3"), uid, gid)
	step("switch", "erik", "--force")
	replaceLive(t, dir, cred(testNow.Add(10*time.Hour), "rt-erik-2"), uid, gid)
	step("switch", "bob", "--force")

	// What the steps must have made.
	for _, rel := range []string{
		".credslots", ".credslots/lock", ".credslots/journal.jsonl", ".credslots/backups",
		".credentials.json.prev", ".credentials.json.bob.prev", ".credentials.json.bob.fingerprint.json",
	} {
		_, err := os.Lstat(filepath.Join(dir, rel))
		assert.NoError(t, err, "%s exists", rel)
	}
	gens, err := os.ReadDir(filepath.Join(dir, ".credslots", "backups"))
	require.NoError(t, err)
	assert.NotEmpty(t, gens, "the second forced switch archived the first .prev as a generation")
	target, err := os.Readlink(filepath.Join(dir, ".credentials.json"))
	require.NoError(t, err)
	assert.Equal(t, ".credentials.json.bob", target)

	var wrong []string
	seen := 0
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		seen++
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != uid || st.Gid != gid {
			rel, _ := filepath.Rel(dir, path)
			wrong = append(wrong, rel+" "+fi.Mode().String()+" owned by "+
				strconv.FormatUint(uint64(st.Uid), 10)+":"+strconv.FormatUint(uint64(st.Gid), 10))
		}
		return nil
	}))
	assert.Empty(t, wrong, "every entry in the creds dir belongs to its owner")
	assert.GreaterOrEqual(t, seen, 14, "the walk saw the dir, slots, sidecar, backups, journal, lock and live symlink")

	real, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	for _, lock := range []string{real + ".lock", filepath.Join(dir, ".oauth_refresh.lock"), filepath.Join(dir, ".storage-write.lock")} {
		_, err := os.Lstat(lock)
		assert.ErrorIs(t, err, fs.ErrNotExist, "%s is released", lock)
	}
}

// TestDryRunHealRefusesAGiantSlot: the dry run copies the creds dir, and a
// 2 GB sparse slot is refused as too large, not read into memory.
func TestDryRunHealRefusesAGiantSlot(t *testing.T) {
	dir := credsDir(t, testNow)
	giant := filepath.Join(dir, ".credentials.json.alice")
	require.NoError(t, os.Truncate(giant, 2<<30))
	live := filepath.Join(dir, ".credentials.json")
	require.NoError(t, os.Remove(live))
	write(t, live, cred(testNow.Add(8*time.Hour), "rt-bob-2"))

	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	r := run("--dir", dir, "--json", "heal", "bob", "--dry-run")
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	assert.Equal(t, 1, r.code, "refused as the library refuses a file over 1 MiB: %s", r.stderr)
	assert.Equal(t, "too_large", r.json(t)["error"])
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(8<<20), "the giant slot was not read")
	leftovers, err := filepath.Glob(filepath.Join(dir, "*dryrun*"))
	require.NoError(t, err)
	assert.Empty(t, leftovers, "the private copy is removed")
}
