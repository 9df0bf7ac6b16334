package credslots

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deadPID returns the PID of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	require.NoError(t, cmd.Run())
	return cmd.Process.Pid
}

func TestGlobLockGuard(t *testing.T) {
	dir := t.TempDir()
	other := t.TempDir()
	dead := deadPID(t)
	files := map[string]string{
		filepath.Join(dir, "agent-b.lock"):       strconv.Itoa(os.Getpid()) + "\n",
		filepath.Join(dir, "agent-a.lock"):       "",
		filepath.Join(dir, "agent-dead.lock"):    strconv.Itoa(dead) + "\nstarted 12:00\n",
		filepath.Join(dir, "agent-text.lock"):    "session in progress",
		filepath.Join(dir, "agent-zero.lock"):    "0",
		filepath.Join(dir, "unrelated.txt"):      "x",
		filepath.Join(other, "batch.job.pid"):    "  " + strconv.Itoa(os.Getpid()),
		filepath.Join(other, "agent-a.lock"):     "dup name in another dir",
		filepath.Join(other, "dead-spaced.lock"): " " + strconv.Itoa(dead),
	}
	for path, content := range files {
		writeFile(t, path, []byte(content))
	}
	guard := GlobLockGuard(filepath.Join(dir, "agent-*.lock"), filepath.Join(other, "*"), "[malformed")
	assert.Equal(t, []string{"agent-a", "agent-b", "agent-text", "agent-zero", "batch.job"}, guard())

	require.NoError(t, os.Remove(filepath.Join(dir, "agent-b.lock")))
	assert.NotContains(t, guard(), "agent-b", "the guard re-globs on every call")

	assert.Empty(t, GlobLockGuard(filepath.Join(t.TempDir(), "*.lock"))())
	assert.NotNil(t, GlobLockGuard()(), "an empty list, not nil")
}

func TestGlobLockGuardDefersSwitch(t *testing.T) {
	locks := t.TempDir()
	f := newFixture(t, WithLockGuard(GlobLockGuard(filepath.Join(locks, "*.lock"))))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeFile(t, filepath.Join(locks, "agent-1.lock"), []byte(strconv.Itoa(os.Getpid())))
	res, err := f.m.SwitchTo("bob", "r")
	require.ErrorIs(t, err, ErrDeferred)
	assert.Equal(t, []string{"agent-1"}, res.DeferredLocks)

	writeFile(t, filepath.Join(locks, "agent-1.lock"), []byte(strconv.Itoa(deadPID(t))))
	res, err = f.m.SwitchTo("bob", "r")
	require.NoError(t, err, "a lock left by a dead process is stale")
	assert.True(t, res.OK)
}

func TestDiscoverSubscriptions(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{
		".credentials.json.bob", ".credentials.json.alice", ".credentials.json.erik",
		".credentials.json", // live
		".credentials.json.bob.fingerprint.json",
		".credentials.json.bob.prev",
		".credentials.json.prev",
		".credentials.json.lock",
		"..credentials.json.bob.credslots.tmp.123",
		".credentials.json.x.tmp",
		".credentials.json.", // empty sub
		".credslots-switches.jsonl",
		"unrelated",
	} {
		writeFile(t, filepath.Join(dir, name), claudeDoc(testNow, "rt"))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, ".credentials.json.adir"), 0o700))
	require.NoError(t, os.Symlink(".credentials.json.bob", filepath.Join(dir, ".credentials.json.linked")))

	subs, err := DiscoverSubscriptions(dir, DefaultSlotTemplate)
	require.NoError(t, err)
	assert.Equal(t, []string{"alice", "bob", "erik", "linked"}, subs)

	writeFile(t, filepath.Join(dir, "slots", "zed.json"), claudeDoc(testNow, "rt"))
	writeFile(t, filepath.Join(dir, "slots", "amy.json"), claudeDoc(testNow, "rt"))
	writeFile(t, filepath.Join(dir, "slots", "amy.json.prev"), []byte("{}"))
	subs, err = DiscoverSubscriptions(dir, "slots/{sub}.json")
	require.NoError(t, err)
	assert.Equal(t, []string{"amy", "zed"}, subs)

	_, err = DiscoverSubscriptions(dir, "slots/x.json")
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = DiscoverSubscriptions(dir, "{sub}/slot.json")
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = DiscoverSubscriptions(filepath.Join(dir, "absent"), DefaultSlotTemplate)
	assert.ErrorIs(t, err, os.ErrNotExist)

	empty, err := DiscoverSubscriptions(t.TempDir(), DefaultSlotTemplate)
	require.NoError(t, err)
	assert.Empty(t, empty)
}
