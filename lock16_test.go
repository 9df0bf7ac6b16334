//go:build unix

package credslots

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/clilock"
	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lockChild starts the test binary as a credslots change in dir.
func lockChild(t *testing.T, mode, dir string, cred *syscall.Credential, exe string) *exec.Cmd {
	t.Helper()
	if exe == "" {
		exe = os.Args[0]
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envLockChild+"="+mode, envDir+"="+dir)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return cmd
}

// ownerRecordFor writes a Claude Code owner record beside the refresh lock
// of f naming pid, in this machine's pid space unless space is given.
func ownerRecordFor(t *testing.T, f *fixture, pid int, space string, lockBirth float64) string {
	t.Helper()
	me, ok := clilock.Self()
	require.True(t, ok, "this test needs /proc")
	if space == "" {
		space = me.Space
	}
	rec := map[string]any{"pid": pid, "pidDomain": me.Domain, "pidSpace": space, "lockBirthtimeMs": lockBirth}
	data, err := json.Marshal(rec)
	require.NoError(t, err)
	path := filepath.Join(f.dir, ".oauth_refresh.lock.owner")
	writeFile(t, path, data)
	return path
}

// liveChild starts a process that lives until the test ends.
func liveChild(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd.Process.Pid
}

func aged(t *testing.T, path string, age time.Duration) {
	t.Helper()
	old := time.Now().Add(-age)
	require.NoError(t, os.Chtimes(path, old, old))
}

func TestClaudeLockStaleTimesOfTheSupportedRange(t *testing.T) {
	cases := []struct {
		name  string
		lock  int // index in claudeLockDirs
		age   time.Duration
		taken bool
	}{
		// 2.1.197 counted these abandoned after 10 s; 2.1.332 holds them 60 s.
		{"refresh lock 15 s old is held", 0, 15 * time.Second, false},
		{"refresh lock 59 s old is held", 0, 59 * time.Second, false},
		{"refresh lock 61 s old is abandoned", 0, 61 * time.Second, true},
		{"legacy lock 30 s old is held", 1, 30 * time.Second, false},
		{"legacy lock 61 s old is abandoned", 1, 61 * time.Second, true},
		{"storage-write lock 14 s old is held", 2, 14 * time.Second, false},
		{"storage-write lock 16 s old is abandoned", 2, 16 * time.Second, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, WithLockTimeout(80*time.Millisecond))
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			dir := claudeLockDirs(t, f)[tc.lock]
			require.NoError(t, os.Mkdir(dir, 0o700))
			aged(t, dir, tc.age)
			_, err := f.m.SwitchTo("bob", "r")
			if tc.taken {
				require.NoError(t, err)
				assert.NoDirExists(t, dir)
				return
			}
			require.ErrorIs(t, err, ErrLockTimeout)
			assert.DirExists(t, dir)
		})
	}
}

func TestLockTimeoutSaysWhichLockHowOldAndWhen(t *testing.T) {
	f := newFixture(t, WithLockTimeout(120*time.Millisecond))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	dir := claudeLockDirs(t, f)[2]
	require.NoError(t, os.Mkdir(dir, 0o700))
	aged(t, dir, 3*time.Second)
	start := time.Now()
	_, err := f.m.SwitchTo("bob", "r")
	require.ErrorIs(t, err, ErrLockTimeout)
	msg := err.Error()
	assert.Contains(t, msg, "storage-write lock "+dir, "names the lock")
	assert.Regexp(t, `lock is 3\.\d+s old`, msg, "says its age")
	assert.Contains(t, msg, "abandoned once 15s old", "says when it counts as abandoned")
	assert.Regexp(t, `after waiting (\d{3,}ms|[\d.]+s) in all`, msg, "says how long was waited in all (%s)", time.Since(start))
}

func TestHeartbeatAtMostFiveSeconds(t *testing.T) {
	// Scaled 50 times down: the refresh lock's 60 s become 1.2 s and 5 s
	// become 100 ms; half the stale time (600 ms) would be too slow.
	f := newFixture(t, withStaleScale(0.02))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	dir := claudeLockDirs(t, f)[0]
	var worst time.Duration
	f.m.cfg.onSwitch = func(string, string) {
		for i := 0; i < 20; i++ { // 800 ms: longer than half the stale time
			if fi, err := os.Stat(dir); err == nil {
				worst = max(worst, time.Since(fi.ModTime()))
			}
			time.Sleep(40 * time.Millisecond)
		}
	}
	_, err := f.m.SwitchTo("bob", "r")
	require.NoError(t, err)
	// Half the stale time would leave it 600 ms unrefreshed.
	assert.Less(t, worst, 350*time.Millisecond, "the held lock went %s without a refresh", worst)
}

func TestOwnerRecordIsRespected(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Log("owner records are judged from /proc: Linux only")
		return
	}
	t.Run("a live holder's lock is never taken over, however old", func(t *testing.T) {
		f := newFixture(t, WithLockTimeout(100*time.Millisecond))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		refresh, legacy := claudeLockDirs(t, f)[0], claudeLockDirs(t, f)[1]
		for _, d := range []string{refresh, legacy} {
			require.NoError(t, os.Mkdir(d, 0o700))
			aged(t, d, 10*time.Minute)
		}
		bt, _ := birthtimeMs(refresh)
		pid := liveChild(t)
		rec := ownerRecordFor(t, f, pid, "", max(bt, 1))
		before, err := os.ReadFile(rec)
		require.NoError(t, err)
		_, err = f.m.SwitchTo("bob", "r")
		require.ErrorIs(t, err, ErrLockTimeout)
		assert.Contains(t, err.Error(), fmt.Sprintf("names pid %d, which is alive", pid))
		assert.DirExists(t, refresh)
		after, err := os.ReadFile(rec)
		require.NoError(t, err)
		assert.Equal(t, before, after, "the record is neither removed nor rewritten")

		// The legacy lock alone: the same record speaks for it.
		require.NoError(t, os.Remove(refresh))
		_, err = f.m.SwitchTo("bob", "r")
		require.ErrorIs(t, err, ErrLockTimeout)
		assert.Contains(t, err.Error(), "legacy")
		assert.DirExists(t, legacy)
	})
	t.Run("a record from another pid namespace counts as alive", func(t *testing.T) {
		f := newFixture(t, WithLockTimeout(100*time.Millisecond))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		refresh := claudeLockDirs(t, f)[0]
		require.NoError(t, os.Mkdir(refresh, 0o700))
		aged(t, refresh, 10*time.Minute)
		ownerRecordFor(t, f, deadPID(t), "elsewhere#pid:[1]", 1)
		_, err := f.m.SwitchTo("bob", "r")
		require.ErrorIs(t, err, ErrLockTimeout)
		assert.DirExists(t, refresh)
	})
	t.Run("a record proving its holder gone frees the lock at once", func(t *testing.T) {
		f := newFixture(t, WithLockTimeout(time.Second))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		refresh := claudeLockDirs(t, f)[0]
		require.NoError(t, os.Mkdir(refresh, 0o700)) // fresh: 60 s from stale
		bt, ok := birthtimeMs(refresh)
		if !ok {
			t.Log("no birthtime on this file system: the stale time decides")
			return
		}
		rec := ownerRecordFor(t, f, deadPID(t), "", bt)
		_, err := f.m.SwitchTo("bob", "r")
		require.NoError(t, err)
		assert.FileExists(t, rec, "a record that is not ours is never removed")
	})
	t.Run("a record of another lock directory proves nothing", func(t *testing.T) {
		f := newFixture(t, WithLockTimeout(100*time.Millisecond))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		refresh := claudeLockDirs(t, f)[0]
		require.NoError(t, os.Mkdir(refresh, 0o700))
		ownerRecordFor(t, f, deadPID(t), "", 12345)
		_, err := f.m.SwitchTo("bob", "r")
		require.ErrorIs(t, err, ErrLockTimeout)
	})
}

func TestOwnRecordAsClaudeCodeWritesIt(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Log("the record's fields come from /proc: Linux only")
		return
	}
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	dirs := claudeLockDirs(t, f)
	owner := filepath.Join(f.dir, ".oauth_refresh.lock.owner")
	var during map[string]any
	var lockBT, legacyBT float64
	f.m.cfg.onSwitch = func(string, string) {
		data, err := os.ReadFile(owner)
		if err == nil {
			require.NoError(t, json.Unmarshal(data, &during))
		}
		lockBT, _ = birthtimeMs(dirs[0])
		legacyBT, _ = birthtimeMs(dirs[1])
	}
	_, err := f.m.SwitchTo("bob", "r")
	require.NoError(t, err)
	if lockBT == 0 {
		assert.Nil(t, during, "no birthtime: no record")
		return
	}
	require.NotNil(t, during, "a record while the refresh lock is held")
	stat, err := os.ReadFile("/proc/self/stat")
	require.NoError(t, err)
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ns, _ := os.Readlink("/proc/self/ns/pid")
	host, _ := os.Hostname()
	machine, _ := os.ReadFile("/etc/machine-id")
	assert.Equal(t, float64(os.Getpid()), during["pid"])
	assert.Equal(t, fields[19], during["procStart"])
	assert.Equal(t, "linux:"+strings.TrimSpace(string(machine))+":"+ns, during["pidDomain"])
	assert.Equal(t, host+"#"+ns, during["pidSpace"])
	assert.Equal(t, lockBT, during["lockBirthtimeMs"])
	assert.Equal(t, legacyBT, during["legacyLockBirthtimeMs"])
	assert.NoFileExists(t, owner, "our record is removed with the locks")

	// A record that is not ours is never rewritten.
	theirs := []byte(`{"pid":1,"pidDomain":"x","pidSpace":"y","lockBirthtimeMs":5}`)
	writeFile(t, owner, theirs)
	_, err = f.m.SwitchTo("alice", "r")
	require.Error(t, err) // alice has no slot: refused before any lock
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err = f.m.SwitchTo("alice", "r")
	require.NoError(t, err)
	got, err := os.ReadFile(owner)
	require.NoError(t, err)
	assert.Equal(t, theirs, got)
}

func TestLocksOfAKilledChangeAreTakenBackAtOnce(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Log("leftovers are proven by birthtime: Linux only")
		return
	}
	// The intent names the held locks relative to the creds dir; a journal
	// of an earlier version names them absolute, and is read the same.
	for _, absolute := range []bool{false, true} {
		t.Run(fmt.Sprintf("absolute=%v", absolute), func(t *testing.T) {
			dir := t.TempDir()
			writeSlot(t, filepath.Join(dir, ".credentials.json.bob"), fresh, "rt-bob")
			writeSlot(t, filepath.Join(dir, ".credentials.json.alice"), fresh, "rt-alice")
			killLockHolder(t, dir)
			for _, lock := range []string{".oauth_refresh.lock", ".storage-write.lock"} {
				require.DirExists(t, filepath.Join(dir, lock), "the killed change left its locks")
			}
			journalPath := filepath.Join(dir, privateDirName, journalName)
			data, err := os.ReadFile(journalPath)
			require.NoError(t, err)
			require.Contains(t, string(data), `"path":".oauth_refresh.lock"`)
			require.Contains(t, string(data), `"path":"../`+filepath.Base(dir)+`.lock"`, "the legacy lock, beside the creds dir")
			require.NotContains(t, string(data), dir+string(filepath.Separator), "no absolute lock path")
			if absolute {
				data = bytes.ReplaceAll(data, []byte(`"path":"../`), []byte(`"path":"`+filepath.Dir(dir)+`/`))
				data = bytes.ReplaceAll(data, []byte(`"path":".`), []byte(`"path":"`+dir+`/.`))
				require.NoError(t, os.WriteFile(journalPath, data, 0o600))
			}

			m, err := New(WithCredsDir(dir), WithSubscriptions("bob", "alice"), WithClock(fixedClock), WithLockTimeout(3*time.Second))
			require.NoError(t, err)
			entries, err := m.Journal()
			require.NoError(t, err)
			var paths []string
			for _, e := range entries {
				if e.Holder != nil {
					for _, l := range e.Holder.Locks {
						paths = append(paths, l.Path)
					}
				}
			}
			assert.Contains(t, paths, filepath.Join(dir, ".oauth_refresh.lock"), "Journal gives the paths absolute")
			assert.Contains(t, paths, dir+".lock")
			start := time.Now()
			_, err = m.SwitchTo("alice", "r")
			require.NoError(t, err, "the killed change's locks are ours to take back")
			assert.Less(t, time.Since(start), 2*time.Second, "taken back at once, not after the stale time")
			for _, lock := range []string{".oauth_refresh.lock", ".oauth_refresh.lock.owner", ".storage-write.lock", "../" + filepath.Base(dir) + ".lock"} {
				assert.NoFileExists(t, filepath.Join(dir, lock))
				assert.NoDirExists(t, filepath.Join(dir, lock))
			}
		})
	}
}

// TestLocksOfAKilledChangeUnderARelativeConfigDirAreTakenBack: with the
// creds dir $CLAUDE_SECURESTORAGE_CONFIG_DIR and a relative
// $CLAUDE_CONFIG_DIR, the .claude.json lock is held at an absolute path,
// so that the intent names it as the next change finds it.
func TestLocksOfAKilledChangeUnderARelativeConfigDirAreTakenBack(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Log("leftovers are proven by birthtime: Linux only")
		return
	}
	// "." would be held as a bare name, which an intent's relative form
	// would read as the creds dir's.
	for _, c := range []struct{ cwd, configDir string }{{"", "cfg"}, {"cfg", "."}} {
		t.Run(c.configDir, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "creds")
			require.NoError(t, os.Mkdir(dir, 0o700))
			require.NoError(t, os.Mkdir(filepath.Join(base, "cfg"), 0o700))
			chdirFor(t, filepath.Join(base, c.cwd))
			writeFile(t, filepath.Join(base, "cfg", claudeJSONName), claudeJSON(aliceAccount))
			t.Setenv("CLAUDE_SECURESTORAGE_CONFIG_DIR", dir)
			t.Setenv("CLAUDE_CONFIG_DIR", c.configDir)
			writeSlot(t, filepath.Join(dir, ".credentials.json.bob"), fresh, "rt-bob")
			writeSlot(t, filepath.Join(dir, ".credentials.json.alice"), fresh, "rt-alice")
			killLockHolder(t, dir)
			lock := filepath.Join(base, "cfg", claudeJSONName+lockSuffix)
			require.DirExists(t, lock, "the killed change held the .claude.json lock")

			m, err := New(WithCredsDir(dir), WithSubscriptions("bob", "alice"), WithClock(fixedClock), WithLockTimeout(3*time.Second))
			require.NoError(t, err)
			start := time.Now()
			_, err = m.SwitchTo("alice", "r")
			require.NoError(t, err)
			assert.Less(t, time.Since(start), 2*time.Second, "taken back at once, not after the stale time")
			assert.NoDirExists(t, lock, "the killed change's .claude.json lock is taken back")
		})
	}
}

// TestLockPathIn: an intent's lock paths are relative to the creds dir
// where they are its entries or its parent's, and always resolve back.
func TestLockPathIn(t *testing.T) {
	for _, c := range []struct{ dir, path, want string }{
		{"/h/.claude", "/h/.claude/.oauth_refresh.lock", ".oauth_refresh.lock"},
		{"/h/.claude", "/h/.claude.lock", "../.claude.lock"},
		{"/h/.claude", "/h/.claudex/.lock", "/h/.claudex/.lock"},
		{"/h/.claude", "/h/.claudex.lock/a", "/h/.claudex.lock/a"},
		{"/h/.claude", "/h/.claude/sub/.lock", "/h/.claude/sub/.lock"},
		{"/h/.claude", "/other/.storage-write.lock", "/other/.storage-write.lock"},
		{"/h/.claude", "/h/.claude", "../.claude"},
		{"/h/.claude", "/h/.claude/", "/h/.claude/"},
		{"/h/.claude", "/h/.claude/..", "/h/.claude/.."},
		{"/h/.claude", "/h/.claude.lock/", "/h/.claude.lock/"},
		{"/.claude", "/.claude.lock", "../.claude.lock"},
		{"/", "/.lock", ".lock"},
		{"/", "/a/.lock", "/a/.lock"},
		// Never given (every lock path is absolute), kept as written.
		{"/h/.claude", "cfg/.claude.json.lock", "cfg/.claude.json.lock"},
		{"/h/.claude", "../cfg/.claude.json.lock", "../cfg/.claude.json.lock"},
	} {
		got := lockPathIn(c.dir, c.path)
		assert.Equal(t, c.want, got, "%s in %s", c.path, c.dir)
		assert.Equal(t, c.path, resolveLockPath(c.dir, got), "%s resolves back", c.path)
	}
	assert.Equal(t, "", resolveLockPath("/h", ""))
}

func TestOwnFilesTakeOnlyThePackagesLock(t *testing.T) {
	f := newFixture(t, WithLockTimeout(100*time.Millisecond))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	// Claude Code is refreshing: its locks are fresh.
	for _, d := range claudeLockDirs(t, f) {
		require.NoError(t, os.Mkdir(d, 0o700))
	}
	require.NoError(t, f.m.Rest("bob", testNow.Add(time.Hour), "quota"))
	require.NoError(t, f.m.MarkInvalid("bob", "invalid_grant"))
	_, err := f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("bob", "r", Force())
	require.ErrorIs(t, err, ErrLockTimeout, "a switch still waits for Claude Code")
}

func TestLegacyLockUnderAnUnwritableParent(t *testing.T) {
	t.Run("injected EACCES: the change goes on without it, logged once", func(t *testing.T) {
		ffs := &faultFS{inner: disk.OS{}, failAt: -1}
		f := newFixture(t, withFS(ffs))
		legacy := claudeLockDirs(t, f)[1]
		ffs.before = nil
		f.m.cfg.fs = &eaccesFS{faultFS: ffs, path: legacy}
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		writeSlot(t, f.slot("alice"), fresh, "rt-alice")
		_, err := f.m.SwitchTo("bob", "r")
		require.NoError(t, err)
		_, err = f.m.SwitchTo("alice", "r")
		require.NoError(t, err)
		assert.Equal(t, 1, strings.Count(f.logs.String(), "legacy lock skipped"), f.logs.String())
	})
	t.Run("as another user under a root-owned parent", func(t *testing.T) {
		if os.Geteuid() != 0 {
			// Not root: this very process is the other user; the parent
			// must be one it cannot write.
			parent := t.TempDir()
			dir := filepath.Join(parent, "creds")
			require.NoError(t, os.Mkdir(dir, 0o700))
			writeSlot(t, filepath.Join(dir, ".credentials.json.bob"), fresh, "rt-bob")
			require.NoError(t, os.Chmod(parent, 0o555))
			t.Cleanup(func() { _ = os.Chmod(parent, 0o755) })
			out, err := lockChild(t, "switch", dir, nil, "").CombinedOutput()
			require.NoError(t, err, "%s", out)
			assert.Contains(t, string(out), "switched")
			return
		}
		const uid, gid = 65534, 65534
		root, exe := otherUserRoot(t)
		parent := filepath.Join(root, "home") // root's, 0755: not the user's to write
		require.NoError(t, os.Mkdir(parent, 0o755))
		dir := filepath.Join(parent, "creds")
		require.NoError(t, os.Mkdir(dir, 0o700))
		writeSlot(t, filepath.Join(dir, ".credentials.json.bob"), fresh, "rt-bob")
		for _, p := range []string{dir, filepath.Join(dir, ".credentials.json.bob")} {
			require.NoError(t, os.Chown(p, uid, gid))
		}
		cmd := lockChild(t, "switch", dir, &syscall.Credential{Uid: uid, Gid: gid}, exe)
		cmd.Dir = dir
		cmd.Env = append(cmd.Env, envLockUmask+"=1") // umask 0277 too
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "switched")
		target, err := os.Readlink(filepath.Join(dir, ".credentials.json"))
		require.NoError(t, err)
		assert.Equal(t, ".credentials.json.bob", target)
		_, err = os.Lstat(dir + ".lock")
		assert.ErrorIs(t, err, fs.ErrNotExist, "no legacy lock could be made")
	})
}

// eaccesFS fails every mkdir of path with EACCES, as a parent directory the
// user cannot write does.
type eaccesFS struct {
	*faultFS
	path string
}

func (e *eaccesFS) Mkdir(name string, perm fs.FileMode) error {
	if name == e.path {
		return &fs.PathError{Op: "mkdir", Path: name, Err: syscall.EACCES}
	}
	return e.faultFS.Mkdir(name, perm)
}

func TestStatusSaysWhenChangesCannotBeMade(t *testing.T) {
	if os.Geteuid() != 0 {
		f := newFixture(t)
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		require.NoError(t, os.Chmod(f.dir, 0o500))
		t.Cleanup(func() { _ = os.Chmod(f.dir, 0o700) })
		st, err := f.m.Status()
		require.NoError(t, err)
		assert.Contains(t, strings.Join(st.Problems, "\n"), "changes cannot be made: directory "+f.dir+" is not writable")
		return
	}
	// As root: run Status as another user on a creds dir it cannot write.
	const uid, gid = 65534, 65534
	root, exe := otherUserRoot(t)
	dir := filepath.Join(root, "creds") // root's: not the user's to write
	require.NoError(t, os.Mkdir(dir, 0o755))
	writeSlot(t, filepath.Join(dir, ".credentials.json.bob"), fresh, "rt-bob")
	require.NoError(t, os.Chmod(filepath.Join(dir, ".credentials.json.bob"), 0o644))
	cmd := lockChild(t, "status", dir, &syscall.Credential{Uid: uid, Gid: gid}, exe)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "changes cannot be made: directory "+dir+" is not writable")
}

func TestASlotNamedLikeTheOwnerRecordIsRefused(t *testing.T) {
	_, err := New(WithCredsDir(t.TempDir()), WithSubscriptions("owner"), WithSlotTemplate(".oauth_refresh.lock.{sub}"))
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "owner record")
}

// killLockHolder runs a change in a child process that holds the creds
// dir's locks and kills it with SIGKILL while it holds them, leaving its
// lock directories behind.
func killLockHolder(t *testing.T, dir string) {
	t.Helper()
	child := lockChild(t, "hang", dir, nil, "")
	out, err := child.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, child.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "holding\n", line)
	require.NoError(t, child.Process.Signal(syscall.SIGKILL))
	_ = child.Wait()
}

// otherUserRoot is a directory another user can enter (0755 up to it),
// holding a copy of the test binary that user can run.
func otherUserRoot(t *testing.T) (root, exe string) {
	t.Helper()
	root = t.TempDir()
	require.NoError(t, os.Chmod(root, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(root), 0o755))
	exe = filepath.Join(root, "credslots.test")
	data, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(exe, data, 0o755))
	return root, exe
}

// TestParentOf: for the clean paths the Manager joins, parentOf is
// filepath.Dir.
func TestParentOf(t *testing.T) {
	for _, p := range []string{"/a/b/.credentials.json", "/x", "/", "rel/auth.json", "auth.json", "/a/b.c/d.lock"} {
		assert.Equal(t, filepath.Dir(p), parentOf(p), p)
	}
}
