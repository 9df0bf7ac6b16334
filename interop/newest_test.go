//go:build interop

package interop

// What the newest end of the supported range changes: 2.1.332's 60 s
// refresh lock and its owner record, and CLAUDE_SECURESTORAGE_CONFIG_DIR.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// newest is 2.1.332's refresh lock, as its bundled code takes it.
var newestRefreshOpts = []string{"--stale", "60000", "--update", "5000"}

// runCredslotsEnv runs the built command with extra environment.
func runCredslotsEnv(t *testing.T, home string, env []string, args ...string) cliResult {
	t.Helper()
	p := startProc(t, procOpts{env: childEnv(home, env...), description: "credslots " + strings.Join(args, " ")},
		append([]string{credslotsBin(t)}, args...)...)
	return p.result(p.wait(t, 90*time.Second))
}

// TestPausedNewestHolderIsWaitedFor: proper-lockfile holding the refresh
// lock with 2.1.332's options, then stopped (SIGSTOP: a stalled event loop,
// a suspended laptop) for longer than 2.1.197's 10 s and well under 60 s,
// is waited for and never taken over; once it runs again it finds its lock
// its own.
func TestPausedNewestHolderIsWaitedFor(t *testing.T) {
	t.Parallel()
	dir, home := claudeCredsDir(t)
	lock := refreshLock.path(dir)
	n := startNodeLock(t, home, "hold", dir, []string{lock}, append([]string{"--ms", "60000"}, newestRefreshOpts...)...)
	acq := n.next(t, 20*time.Second, "acquired", "elocked", "error")
	require.Equal(t, "acquired", acq.Event)
	require.NoError(t, syscall.Kill(n.p.cmd.Process.Pid, syscall.SIGSTOP))
	stopped := time.Now()
	time.Sleep(11 * time.Second)
	fi, err := os.Stat(lock)
	require.NoError(t, err)
	require.Greater(t, time.Since(fi.ModTime()), 10*time.Second, "the paused holder's lock is older than 2.1.197's stale time")

	r := runCredslots(t, home, "--dir", dir, "--subs", "alice,bob", "--json", "--lock-timeout", "4s", "switch", "bob")
	assert.Equal(t, 1, r.code, "%s", r)
	assert.Equal(t, "lock_timeout", r.doc["error"], "%s", r)
	reason, _ := r.doc["reason"].(string)
	assert.Contains(t, reason, lock)
	assert.Contains(t, reason, "abandoned once 1m0s old")
	after, err := os.Stat(lock)
	require.NoError(t, err, "the lock was not taken over")
	assert.True(t, after.ModTime().Equal(fi.ModTime()), "its mtime is still the holder's")
	assert.Less(t, time.Since(stopped), 60*time.Second)

	require.NoError(t, syscall.Kill(n.p.cmd.Process.Pid, syscall.SIGCONT))
	n.release(t)
	done := n.next(t, 20*time.Second, "done")
	require.NotNil(t, done.OK)
	assert.True(t, *done.OK, "the holder found its lock its own: %v", n.seen())
	for _, ev := range n.seen() {
		assert.NotEqual(t, "compromised", ev.Event)
	}
	r = runCredslots(t, home, "--dir", dir, "--subs", "alice,bob", "--json", "switch", "bob")
	assert.Equal(t, 0, r.code, "after the release: %s", r)
}

// TestOwnerRecordOfALiveHolderIsRespected: a holder that writes 2.1.332's
// owner record and is then stopped, its lock made older than every stale
// time of the range, still keeps it: its record names a live process.
func TestOwnerRecordOfALiveHolderIsRespected(t *testing.T) {
	t.Parallel()
	dir, home := claudeCredsDir(t)
	locks := []string{refreshLock.path(dir), legacyLock.path(dir)}
	n := startNodeLock(t, home, "hold", dir, locks, append([]string{"--ms", "60000", "--owner"}, newestRefreshOpts...)...)
	for range locks {
		require.Equal(t, "acquired", n.next(t, 20*time.Second, "acquired", "elocked", "error").Event)
	}
	ownerEv := n.next(t, 10*time.Second, "owner", "error")
	require.Equal(t, "owner", ownerEv.Event)
	t.Logf("owner record: %s", ownerEv.Message)
	require.NoError(t, syscall.Kill(n.p.cmd.Process.Pid, syscall.SIGSTOP))
	defer syscall.Kill(n.p.cmd.Process.Pid, syscall.SIGCONT)
	old := time.Now().Add(-2 * time.Minute)
	for _, l := range locks {
		require.NoError(t, os.Chtimes(l, old, old))
	}
	record, err := os.ReadFile(filepath.Join(dir, ".oauth_refresh.lock.owner"))
	require.NoError(t, err)

	r := runCredslots(t, home, "--dir", dir, "--subs", "alice,bob", "--json", "--lock-timeout", "2s", "switch", "bob")
	assert.Equal(t, 1, r.code, "%s", r)
	assert.Equal(t, "lock_timeout", r.doc["error"], "%s", r)
	reason, _ := r.doc["reason"].(string)
	assert.Contains(t, reason, fmt.Sprintf("names pid %d, which is alive", n.p.cmd.Process.Pid))
	for _, l := range locks {
		fi, err := os.Stat(l)
		require.NoError(t, err, "%s was taken over", l)
		assert.True(t, fi.ModTime().Equal(old.Truncate(time.Microsecond)) || fi.ModTime().Before(time.Now().Add(-time.Minute)), "%s untouched", l)
	}
	again, err := os.ReadFile(filepath.Join(dir, ".oauth_refresh.lock.owner"))
	require.NoError(t, err, "the record is not removed")
	assert.Equal(t, record, again, "the record is not rewritten")
	assert.Equal(t, ".credentials.json.alice", liveTarget(t, dir, ".credentials.json"))
}

// claudeCredsDir is a Claude Code creds dir with alice (live) and bob, both
// fresh.
func claudeCredsDir(t *testing.T) (dir, home string) {
	t.Helper()
	requireInstalled(t)
	dir, home = newCredsDir(t)
	writeFile0600(t, filepath.Join(dir, ".credentials.json.alice"), claudeCred("fake-alice-at", "fake-alice-rt", time.Now().Add(2*time.Hour)))
	writeFile0600(t, filepath.Join(dir, ".credentials.json.bob"), claudeCred("fake-bob-at", "fake-bob-rt", time.Now().Add(2*time.Hour)))
	require.NoError(t, os.Symlink(".credentials.json.alice", filepath.Join(dir, ".credentials.json")))
	return dir, home
}

// TestClaudeOwnerRecordAsTraced: while the real Claude Code refreshes (its
// token request held), what it keeps beside its refresh lock. 2.1.332
// writes the owner record whose fields credslots computes for its own the
// same way: this checks each against the running Claude Code process.
func TestClaudeOwnerRecordAsTraced(t *testing.T) {
	forEachClaude(t, func(t *testing.T, rel claudeRelease) {
		s := newClaudeSetup(t, rel)
		p := s.start(t, "-p", "say hi")
		s.waitTokenRequest(t, p, 60*time.Second)
		ownerPath := filepath.Join(s.dir, ".oauth_refresh.lock.owner")
		var raw []byte
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if b, err := os.ReadFile(ownerPath); err == nil && len(b) > 0 {
				raw = b
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !rel.atLeast("2.1.332") {
			assert.Nil(t, raw, "%s writes no owner record", rel.Version)
			s.fake.open()
			p.wait(t, 90*time.Second)
			return
		}
		require.NotNil(t, raw, "%s writes its owner record while refreshing", rel.Version)
		t.Logf("Claude Code %s owner record: %s", rel.Version, raw)
		var rec map[string]any
		require.NoError(t, json.Unmarshal(raw, &rec))
		pid := p.cmd.Process.Pid
		assert.Equal(t, float64(pid), rec["pid"])
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		require.NoError(t, err)
		st := string(stat)
		assert.Equal(t, strings.Split(st[strings.LastIndexByte(st, ')')+2:], " ")[19], rec["procStart"], "field 22 of /proc/<pid>/stat")
		ns, _ := os.Readlink("/proc/self/ns/pid")
		machine, _ := os.ReadFile("/etc/machine-id")
		host, _ := os.Hostname()
		assert.Equal(t, "linux:"+strings.TrimSpace(string(machine))+":"+ns, rec["pidDomain"])
		assert.Equal(t, host+"#"+ns, rec["pidSpace"])
		for key, lock := range map[string]string{"lockBirthtimeMs": refreshLock.path(s.dir), "legacyLockBirthtimeMs": legacyLock.path(s.dir)} {
			var sx unix.Statx_t
			require.NoError(t, unix.Statx(unix.AT_FDCWD, lock, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BTIME, &sx))
			want := float64(sx.Btime.Sec)*1000 + float64(sx.Btime.Nsec)/1e6
			assert.Equal(t, want, rec[key], "%s: statx btime in ms, as credslots computes it", key)
		}
		s.fake.open()
		assert.Equal(t, 0, p.wait(t, 90*time.Second))
		assert.NoFileExists(t, ownerPath, "removed with the lock")
	})
}

// TestClaudeAuthStatusWithSecureStorageDir: with
// CLAUDE_SECURESTORAGE_CONFIG_DIR (2.1.220 and later) the credentials live
// in a dir of their own while the config dir stays; credslots switches the
// slots in that dir and splices the account into the config dir's
// .claude.json, and `claude auth status` reports the slot switched to.
func TestClaudeAuthStatusWithSecureStorageDir(t *testing.T) {
	forEachClaude(t, func(t *testing.T, rel claudeRelease) {
		if !rel.atLeast("2.1.220") {
			t.Logf("Claude Code %s predates CLAUDE_SECURESTORAGE_CONFIG_DIR", rel.Version)
			return
		}
		requireInstalled(t)
		root := t.TempDir()
		home, store, cfg := filepath.Join(root, "home"), filepath.Join(root, "store"), filepath.Join(root, "cfg")
		for _, d := range []string{home, store, cfg} {
			require.NoError(t, os.MkdirAll(d, 0o700))
		}
		cred := func(name, plan string) []byte {
			b, _ := json.Marshal(map[string]any{"claudeAiOauth": map[string]any{
				"accessToken": "fake-" + name + "-at", "refreshToken": "fake-" + name + "-rt",
				"expiresAt": time.Now().Add(2 * time.Hour).UnixMilli(), "scopes": []string{"user:inference", "user:profile"},
				"subscriptionType": plan,
			}})
			return b
		}
		writeFile0600(t, filepath.Join(store, ".credentials.json.alice"), cred("alice", "pro"))
		writeFile0600(t, filepath.Join(store, ".credentials.json.bob"), cred("bob", "max"))
		account := func(name string) map[string]any {
			return map[string]any{"accountUuid": "00000000-0000-4000-8000-" + pad12(name), "emailAddress": name + "@example.test"}
		}
		writeClaudeJSON := func(name string) {
			b, _ := json.MarshalIndent(map[string]any{"hasCompletedOnboarding": true, "oauthAccount": account(name)}, "", "  ")
			writeFile0600(t, filepath.Join(cfg, ".claude.json"), b)
		}
		env := []string{"CLAUDE_SECURESTORAGE_CONFIG_DIR=" + store, "CLAUDE_CONFIG_DIR=" + cfg}
		cs := func(args ...string) cliResult {
			return runCredslotsEnv(t, home, env, append([]string{"--dir", store, "--subs", "alice,bob", "--json"}, args...)...)
		}
		// Each account as Claude Code would show it, captured once.
		for _, sub := range []string{"alice", "bob"} {
			require.Equal(t, 0, cs("switch", sub).code)
			writeClaudeJSON(sub)
			require.Equal(t, 0, cs("capture", sub).code)
		}
		status := func() map[string]any {
			p := startProc(t, procOpts{dir: root, env: childEnv(home, append(env, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "HTTPS_PROXY=http://127.0.0.1:9", "NO_COLOR=1")...),
				description: "claude auth status"}, rel.Bin, "auth", "status", "--json")
			code := p.wait(t, 60*time.Second)
			require.Equal(t, 0, code, "claude auth status: %s", p.stderr.String())
			var doc map[string]any
			require.NoError(t, json.Unmarshal([]byte(p.stdout.String()), &doc), p.stdout.String())
			return doc
		}
		for _, tc := range []struct{ sub, plan string }{{"alice", "pro"}, {"bob", "max"}, {"alice", "pro"}} {
			r := cs("switch", tc.sub)
			require.Equal(t, 0, r.code, "%s", r)
			doc := status()
			t.Logf("after switch %s: %v", tc.sub, doc)
			assert.Equal(t, true, doc["loggedIn"])
			assert.Equal(t, tc.plan, doc["subscriptionType"], "Claude Code read %s's slot", tc.sub)
			assert.Equal(t, tc.sub+"@example.test", doc["email"], "the account spliced into the config dir's .claude.json")
			assert.Equal(t, cfg, doc["configDirectory"])
		}
		for _, l := range []string{".oauth_refresh.lock", ".storage-write.lock"} {
			assert.NoDirExists(t, filepath.Join(store, l))
		}

		// Set but empty, the variable names the home directory's .claude,
		// whatever CLAUDE_CONFIG_DIR says: where Claude Code reads the
		// login is where credslots finds the creds dir.
		homeDir := filepath.Join(home, ".claude")
		require.NoError(t, os.MkdirAll(homeDir, 0o700))
		writeFile0600(t, filepath.Join(homeDir, ".credentials.json"), cred("carol", "team"))
		env = []string{"CLAUDE_SECURESTORAGE_CONFIG_DIR=", "CLAUDE_CONFIG_DIR=" + cfg}
		doc := status()
		assert.Equal(t, "team", doc["subscriptionType"], "Claude Code read the home directory's login: %v", doc)
		r := runCredslotsEnv(t, home, env, "--json", "status")
		var st map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), "%s", r)
		assert.Equal(t, homeDir, st["creds_dir"])
	})
}

// startKilledHolder runs a credslots change in dir that switches to bob and
// then blocks in its on-switch hook, holding every lock, and kills it (as
// with kill -9) once it holds them.
func startKilledHolder(t *testing.T, home, dir string) time.Time {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	helper := startProc(t, procOpts{
		env:         append(childEnv(home), helperEnv+"=hold-switch", "CREDSLOTS_INTEROP_DIR="+dir),
		description: "credslots helper (hold-switch)",
	}, self, "-test.run=^$")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(helper.stdout.String(), "entered") {
		if !helper.running() || time.Now().After(deadline) {
			t.Fatalf("helper never reached its on-switch hook\nstdout: %s\nstderr: %s", helper.stdout.String(), helper.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.FileExists(t, filepath.Join(dir, ".oauth_refresh.lock.owner"), "credslots writes its owner record")
	helper.kill()
	helper.wait(t, 10*time.Second)
	for _, l := range []string{refreshLock.path(dir), legacyLock.path(dir), storageLock.path(dir)} {
		require.DirExists(t, l, "a killed credslots cannot have removed its lock")
	}
	return time.Now()
}

// TestKilledCredslotsLocksTakenBackAtOnce: the next credslots change takes
// a killed change's lock directories back at once (its journal proves them
// its own), not after 60 s.
func TestKilledCredslotsLocksTakenBackAtOnce(t *testing.T) {
	requireInstalled(t)
	t.Parallel()
	dir, home := newCredsDir(t)
	seedClaude(t, dir)
	killed := startKilledHolder(t, home, dir)
	r := runCredslots(t, home, "--dir", dir, "--subs", "alice,bob", "--json", "--lock-timeout", "3s", "switch", "alice")
	assert.Equal(t, 0, r.code, "%s", r)
	assert.Less(t, time.Since(killed), 10*time.Second)
	assert.Equal(t, ".credentials.json.alice", liveTarget(t, dir, ".credentials.json"))
	for _, l := range []string{refreshLock.path(dir), legacyLock.path(dir), storageLock.path(dir), filepath.Join(dir, ".oauth_refresh.lock.owner")} {
		assert.NoFileExists(t, l)
		assert.NoDirExists(t, l)
	}
}

// TestClaudeRefreshesAfterAKilledCredslots: a credslots killed while it
// holds Claude Code's refresh locks does not keep Claude Code from
// refreshing for 60 s: 2.1.332 takes the lock over once credslots's owner
// record proves it gone (2.1.197 once its 10 s stale time passed).
func TestClaudeRefreshesAfterAKilledCredslots(t *testing.T) {
	forEachClaude(t, func(t *testing.T, rel claudeRelease) {
		s := newClaudeSetup(t, rel)
		killed := startKilledHolder(t, s.home, s.dir) // live -> bob, locks left
		writeFile0600(t, filepath.Join(s.dir, ".credentials.json.bob"), claudeCred(s.bob.access, s.bob.refresh, time.Now().Add(-time.Hour)))
		s.fake.open()
		if !rel.atLeast("2.1.332") {
			// 2.1.197 reads no owner record: it retries for 5 to 10 s
			// and refreshes once the lock is 10 s old, or gives up this
			// time. Start it once the lock is stale, so the run is steady.
			time.Sleep(time.Until(killed.Add(10500 * time.Millisecond)))
		}
		p := s.start(t, "-p", "say hi")
		rt := s.waitTokenRequest(t, p, 55*time.Second)
		took := time.Since(killed)
		t.Logf("Claude Code %s refreshed %s after credslots was killed", rel.Version, took.Round(time.Millisecond))
		assert.Equal(t, s.bob.refresh, rt)
		assert.Less(t, took, 50*time.Second, "not held off for the 60 s stale time")
		assert.Equal(t, 0, p.wait(t, 90*time.Second), "claude: %s", tail(p.stderr.String()))
		assert.Contains(t, p.stdout.String(), "fake API answered for bob")
	})
}
