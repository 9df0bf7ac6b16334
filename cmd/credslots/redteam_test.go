//go:build unix

package main

// Red-team replays of a person's steps through the command (SPEC section
// 21) that the first round of the fix still got wrong.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README's rotation by hand (ln -sfn), with heal --auto from cron and
// no watch: a heal --auto that runs between the flip and Claude Code's
// refresh sees the link pointing at alice, so the refresh it heals next is
// alice's, healed into alice's slot, never into bob's.
func TestRedteamHealAutoRemembersAHandFlipItSaw(t *testing.T) {
	dir, _ := homeWithAccounts(t) // bob switched to by the command
	live := filepath.Join(dir, ".credentials.json")
	tmp := live + ".hand"
	require.NoError(t, os.Symlink(".credentials.json.alice", tmp))
	require.NoError(t, os.Rename(tmp, live))
	r := run("--dir", dir, "heal", "--auto") // cron, before the refresh
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "no_drift")

	time.Sleep(20 * time.Millisecond)
	bobBefore := mustRead(t, filepath.Join(dir, ".credentials.json.bob"))
	refreshed := cred(testNow.Add(9*time.Hour), "rt-alice-2")
	claudeRefresh(t, dir, refreshed)
	r = run("--dir", dir, "heal", "--auto")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, string(refreshed), mustRead(t, filepath.Join(dir, ".credentials.json.alice")), "alice's refresh is in alice's slot")
	assert.Equal(t, bobBefore, mustRead(t, filepath.Join(dir, ".credentials.json.bob")), "bob's slot is untouched")
}

// A rotation by copy (cp .credentials.json.alice .credentials.json) while
// watch runs: watch does not claim a heal it did not make, and alice's
// next refresh is healed into alice's slot, never into bob's.
func TestRedteamWatchRemembersARotationByCopy(t *testing.T) {
	dir, _ := homeWithAccounts(t) // bob switched to by the command
	w := startWatch(t, "--dir", dir, "--json", "watch", "--login-settle", "100ms")
	time.Sleep(20 * time.Millisecond)
	live := filepath.Join(dir, ".credentials.json")
	alice := mustRead(t, filepath.Join(dir, ".credentials.json.alice"))
	tmp := live + ".cp"
	write(t, tmp, []byte(alice))
	require.NoError(t, os.Rename(tmp, live))
	time.Sleep(500 * time.Millisecond)
	for _, ev := range w.events(t) {
		if ev["event"] == "healed" {
			fi, err := os.Lstat(live)
			require.NoError(t, err)
			assert.NotZero(t, fi.Mode()&os.ModeSymlink, "watch says healed, symlink restored: %v", ev)
		}
	}

	bobBefore := mustRead(t, filepath.Join(dir, ".credentials.json.bob"))
	refreshed := cred(testNow.Add(9*time.Hour), "rt-alice-2")
	claudeRefresh(t, dir, refreshed)
	time.Sleep(800 * time.Millisecond)
	assert.Equal(t, 0, w.stop(t))
	assert.Equal(t, bobBefore, mustRead(t, filepath.Join(dir, ".credentials.json.bob")), "alice's refresh is not in bob's slot: %s", w.stdout)
}

// TestRedteamWatchIsQuietOnceACopyIsSettled: a live file that is a copy of
// a slot is finished once; the watch's own lock directories must not wake
// it into taking Claude Code's refresh lock again and again, where a
// refresh would find it held.
func TestRedteamWatchIsQuietOnceACopyIsSettled(t *testing.T) {
	dir, _ := homeWithAccounts(t)
	w := startWatch(t, "--dir", dir, "--json", "watch", "--login-settle", "50ms")
	live := filepath.Join(dir, ".credentials.json")
	alice := mustRead(t, filepath.Join(dir, ".credentials.json.alice"))
	write(t, live+".cp", []byte(alice))
	require.NoError(t, os.Rename(live+".cp", live))
	require.Eventually(t, func() bool {
		for _, ev := range w.events(t) {
			if ev["event"] == "flip" {
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond, "the copy is seen: %s", w.stdout)
	time.Sleep(300 * time.Millisecond) // what the copy asked for is done

	count := creates(t, dir, ".oauth_refresh.lock")
	time.Sleep(time.Second)
	taken := count()
	assert.Zero(t, taken, "the refresh lock taken %d times in a second of nothing happening", taken)
	assert.Equal(t, 0, w.stop(t))
}

// TestRedteamWatchRetriesAFinishThatMetALock: an interrupted heal (the slot
// and the live file hold the same refreshed bytes, the journal's intent has
// no outcome) whose finish meets Claude Code's refresh lock held is
// reported and tried again after --retry, not forgotten until the live file
// changes; the events its own attempt made do not make it try at once.
func TestRedteamWatchRetriesAFinishThatMetALock(t *testing.T) {
	dir, _ := homeWithAccounts(t)
	live := filepath.Join(dir, ".credentials.json")
	refreshed := cred(testNow.Add(9*time.Hour), "rt-bob-2")
	write(t, filepath.Join(dir, ".credentials.json.bob"), refreshed)
	require.NoError(t, os.Remove(live))
	write(t, live, refreshed)
	sum := sha256.Sum256([]byte("rt-bob-2"))
	jf, err := os.OpenFile(filepath.Join(dir, ".credslots", "journal.jsonl"), os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	_, err = fmt.Fprintf(jf, `{"time":%q,"op":"heal","phase":"intent","id":"cut","sub":"bob","reason":"auto-heal drift","fingerprint":%q}`+"\n",
		time.Now().UTC().Format(time.RFC3339Nano), hex.EncodeToString(sum[:]))
	require.NoError(t, err)
	require.NoError(t, jf.Close())

	lock := filepath.Join(dir, ".oauth_refresh.lock")
	require.NoError(t, os.Mkdir(lock, 0o755)) // Claude Code's refresh, under way
	w := startWatch(t, "--dir", dir, "--json", "--lock-timeout", "200ms", "watch", "--login-settle", "0", "--retry", "700ms")
	require.Eventually(t, func() bool { return strings.Contains(w.stdout.String(), "heal_refused") }, 3*time.Second, 10*time.Millisecond,
		"the finish that met the lock is reported: %s", w.stdout)
	require.NoError(t, os.Remove(lock)) // the refresh is over
	assert.Eventually(t, func() bool {
		fi, err := os.Lstat(live)
		return err == nil && fi.Mode()&os.ModeSymlink != 0
	}, 3*time.Second, 20*time.Millisecond, "the interrupted heal is finished once the lock is free: %s", w.stdout)
	assert.Equal(t, 0, w.stop(t))
}
