package credslots

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A creds dir given relative (WithCredsDir("creds"), or credslots --dir
// creds) must still refuse the creds dir itself as a seat (spec 23: "Refused:
// a seat inside <D> (other than home and ... private seats)").
func TestARelativeCredsDirItselfIsRefusedAsASeat(t *testing.T) {
	root := t.TempDir()
	// No CLI locks (section 16: "a creds dir no CLI uses"; Gemini CLI has none).
	m := relativeManager(t, root, WithCredsDir("creds"), WithCLILocks(false))
	// home: the live symlink points at bob.
	require.NoError(t, os.Symlink(m.symlinkTarget("bob"), m.LivePath()))

	abs := filepath.Join(root, "creds")
	l, err := m.Lease(context.Background(), abs)
	// Check before any release: the lease must not have touched home.
	fi, lerr := os.Lstat(m.LivePath())
	require.NoError(t, lerr)
	assert.NotZero(t, fi.Mode()&os.ModeSymlink, "home's live symlink untouched")
	if l != nil {
		t.Logf("leased %s to %s; live path now a regular file holding: %s", l.Sub(), l.Seat(), claudeMember(t, m.LivePath()))
		defer l.Release()
	}
	require.Error(t, err, "the creds dir itself is refused as a seat")
}

// The same with a seat inside the creds dir, outside the private seats.
func TestASeatInsideARelativeCredsDirIsRefused(t *testing.T) {
	root := t.TempDir()
	m := relativeManager(t, root, WithCredsDir("creds"))
	l, err := m.Lease(context.Background(), filepath.Join("creds", ".credslots"))
	if l != nil {
		defer l.Release()
	}
	require.Error(t, err, "a seat inside the creds dir is refused")
}

// Gemini CLI, default options (it has no CLI locks): the creds dir given
// relative, the seat given as its absolute path, is refused, and home's
// live symlink stays.
func TestGeminiARelativeCredsDirItselfIsRefusedAsASeat(t *testing.T) {
	root := t.TempDir()
	m := relativeManager(t, root, WithCredsDir(".gemini"), WithFormat(GeminiCLI))
	require.NoError(t, os.Symlink(m.symlinkTarget("bob"), m.LivePath()))

	l, err := m.Lease(context.Background(), filepath.Join(root, ".gemini"))
	fi, lerr := os.Lstat(m.LivePath())
	require.NoError(t, lerr)
	assert.NotZero(t, fi.Mode()&os.ModeSymlink, "home's live symlink untouched")
	if l != nil {
		t.Logf("leased %s to %s (home's live path)", l.Sub(), l.Seat())
		defer l.Release()
	}
	require.Error(t, err, "the creds dir itself is refused as a seat")
}

// With a relative creds dir, a dead private seat under
// <D>/.credslots/seats/ is still removed once recovered (spec 23: private
// seats are "removed afterwards").
func TestARelativeCredsDirsDeadPrivateSeatIsRemoved(t *testing.T) {
	root := t.TempDir()
	m := relativeManager(t, root, WithCredsDir("creds"))
	private := filepath.Join("creds", privateDirName, SeatsDirName, "123-abc")
	l, err := m.Lease(context.Background(), private, LeaseSub("bob"))
	require.NoError(t, err)
	require.NoError(t, l.File().Close()) // the lessee died
	l2, err := m.Lease(context.Background(), filepath.Join(t.TempDir(), "seat"), LeaseSub("alice"))
	require.NoError(t, err)
	defer l2.Release()
	_, err = os.Lstat(private)
	assert.True(t, os.IsNotExist(err), "the dead private seat is removed once recovered")
}

// relativeManager is a Manager of bob and alice, made in root (the working
// directory from now on) with opts, which name a relative creds dir: each
// slot written in the format's shape and captured, alice's login lasting
// an hour longer.
func relativeManager(t *testing.T, root string, opts ...Option) *Manager {
	t.Helper()
	chdirFor(t, root)
	m, err := New(append([]Option{WithSubscriptions("bob", "alice"), WithClock(fixedClock)}, opts...)...)
	require.NoError(t, err)
	for i, sub := range []string{"bob", "alice"} {
		expiry, rt := fresh.Add(time.Duration(i)*time.Hour), "rt-"+sub+"-0"
		if m.cfg.format == GeminiCLI {
			writeFile(t, m.SlotPath(sub), geminiDoc(expiry, rt))
		} else {
			writeSlot(t, m.SlotPath(sub), expiry, rt)
		}
		_, err := m.CaptureSlotFingerprint(sub)
		require.NoError(t, err)
	}
	return m
}

// chdirFor changes the working directory for the test (the module is
// go1.22: no t.Chdir), restoring it after.
func chdirFor(t *testing.T, dir string) {
	t.Helper()
	old, err := os.Getwd()
	require.NoError(t, err)
	require.NoError(t, os.Chdir(dir))
	t.Cleanup(func() { _ = os.Chdir(old) })
}
