//go:build unix

package credslots

// Tests that need Unix: FIFOs, the umask, a symlink's own times.

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJournalHostileFiles(t *testing.T) {
	t.Run("symlink", func(t *testing.T) {
		f := newFixture(t)
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		outside := filepath.Join(t.TempDir(), "elsewhere")
		writeFile(t, outside, []byte("keep me\n"))
		require.NoError(t, os.MkdirAll(filepath.Dir(f.m.journalPath()), 0o700))
		require.NoError(t, os.Symlink(outside, f.m.journalPath()))

		_, err := f.m.SwitchTo("bob", "r")
		require.Error(t, err, "a change that cannot be journaled is not made")
		got, rerr := os.ReadFile(outside)
		require.NoError(t, rerr)
		assert.Equal(t, "keep me\n", string(got), "the journal's writes never follow a symlink")
		assert.Equal(t, "", f.readlink(t))
	})
	t.Run("fifo", func(t *testing.T) {
		f := newFixture(t)
		require.NoError(t, os.MkdirAll(filepath.Dir(f.m.journalPath()), 0o700))
		require.NoError(t, syscall.Mkfifo(f.m.journalPath(), 0o600))
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err := f.m.Journal()
			assert.Error(t, err)
			_, ok := f.m.LastActive()
			assert.False(t, ok)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("reading a FIFO journal blocked")
		}
	})
}

func TestLockFileIs0600WhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0o277)
	defer syscall.Umask(old)
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	for _, sub := range []string{"bob", "alice", "bob"} {
		_, err := f.m.SwitchTo(sub, "r")
		require.NoError(t, err, "every change works under umask 0277")
	}
	for path, want := range map[string]os.FileMode{
		f.m.lockPath:                       0o600,
		filepath.Join(f.dir, ".credslots"): 0o700,
		f.m.journalPath():                  0o600,
		f.m.FingerprintPath("bob"):         0o600,
	} {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, want, fi.Mode().Perm(), path)
	}
}

func TestSweepRemovesOldLeftovers(t *testing.T) {
	f := newFixture(t, withSweepAge(time.Minute), WithSlotTemplate("slots/{sub}.json"))
	bob := writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	old := time.Now().Add(-2 * time.Minute)
	mk := func(path string, data []byte, age time.Time) string {
		writeFile(t, path, data)
		require.NoError(t, os.Chtimes(path, age, age))
		return path
	}
	partial := mk(filepath.Join(f.dir, "slots", ".bob.json"+tmpMarker+"123"), []byte(`{"claudeAiOauth":`), old)
	young := mk(filepath.Join(f.dir, "."+DefaultLiveName+tmpMarker+"456"), []byte("x"), time.Now())
	dupLink := mk(filepath.Join(f.dir, "."+DefaultLiveName+tmpLinkMarker+"a"), bob, old)
	onlyCopy := claudeDoc(fresh, "rt-only-in-leftover")
	orphan := mk(filepath.Join(f.dir, "."+DefaultLiveName+tmpLinkMarker+"b"), onlyCopy, old)
	require.NoError(t, os.Chmod(orphan, 0o644)) // the CLI's file, as it wrote it
	linkLeft := filepath.Join(f.dir, "."+DefaultLiveName+tmpLinkMarker+"c")
	require.NoError(t, os.Symlink("slots/bob.json", linkLeft))
	lchtimes(t, linkLeft, old)
	foreign := mk(filepath.Join(f.dir, ".credentials.json.tmp.1234.5678"), []byte("cli's own temp"), old)
	workDir := filepath.Join(f.dir, "."+DefaultLiveName+tmpMarker+"dryrun-9")
	mk(filepath.Join(workDir, "slots", "bob.json"), bob, old)
	require.NoError(t, os.Chtimes(workDir, old, old))

	_, err := f.m.SwitchTo("bob", "r")
	require.NoError(t, err)

	assert.NoFileExists(t, partial)
	assert.NoFileExists(t, dupLink)
	assert.NoFileExists(t, orphan)
	assert.NoFileExists(t, linkLeft)
	assert.NoDirExists(t, workDir, "an abandoned working directory is removed")
	assert.FileExists(t, young, "a temp file younger than a minute may belong to a running operation")
	assert.FileExists(t, foreign, "a file the package did not write is never touched")
	backups, err := f.m.Backups()
	require.NoError(t, err)
	require.Len(t, backups, 1, "an unverified leftover of a swap is rescued, not deleted")
	b := backups[0]
	assert.Equal(t, DefaultLiveName, b.Of)
	assert.Equal(t, "", b.Sub)
	assert.True(t, strings.HasPrefix(b.Name, ".credslots/backups/"+DefaultLiveName+"."), b.Name)
	assert.Equal(t, hashBytes([]byte("rt-only-in-leftover")), b.Fingerprint)
	kept, err := os.ReadFile(b.Path)
	require.NoError(t, err)
	assert.Equal(t, onlyCopy, kept)
	fi, err := os.Stat(b.Path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "rescued files are 0600")
	assert.NoFileExists(t, f.m.LivePath()+prevSuffix, "the live backup is not overwritten by a rescue")
}
