package credslots

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// generations lists the backup generations of the file named of (relative
// to the creds dir), oldest first, with their contents.
func generations(t testing.TB, f *fixture, of string) ([]string, [][]byte) {
	t.Helper()
	dir := filepath.Join(f.dir, ".credslots", "backups")
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	require.NoError(t, err)
	var names []string
	for _, de := range ents {
		if strings.HasPrefix(de.Name(), of+".") && de.Name() != of+".prev" {
			rest := strings.TrimPrefix(de.Name(), of+".")
			if _, err := time.Parse(generationTime, rest); err == nil {
				names = append(names, de.Name())
			}
		}
	}
	sort.Strings(names)
	var data [][]byte
	for _, n := range names {
		p := filepath.Join(dir, n)
		fi, err := os.Lstat(p)
		require.NoError(t, err)
		assert.True(t, fi.Mode().IsRegular(), p)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), p)
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		data = append(data, b)
	}
	return names, data
}

// tokensOf maps documents to their refresh tokens.
func tokensOf(docs [][]byte) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = refreshTokenOf(d)
	}
	return out
}

// healInto refreshes the live file with a new token of sub and heals it.
func healInto(t *testing.T, f *fixture, sub, token string, opts ...SwitchOption) []byte {
	t.Helper()
	doc := claudeDoc(fresh.Add(time.Hour), token)
	f.refresh(t, doc)
	_, err := f.m.HealDriftTo(sub, opts...)
	require.NoError(t, err)
	return doc
}

// ageBackup gives a .prev file a distinct, increasing mtime, so that the
// generation it becomes sorts in the order it was made whatever the
// file system's timestamp granularity.
func ageBackup(t *testing.T, path string, i int) {
	t.Helper()
	at := time.Now().Add(-time.Hour).Add(time.Duration(i) * time.Minute)
	require.NoError(t, os.Chtimes(path, at, at))
}

func TestForcedSwitchesKeepEveryDriftedLiveFile(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	live1 := claudeDoc(fresh, "rt-live-1")
	writeFile(t, f.m.LivePath(), live1)
	_, err := f.m.SwitchTo("bob", "operator", Force())
	require.NoError(t, err)
	prev, err := os.ReadFile(f.m.LivePath() + ".prev")
	require.NoError(t, err)
	assert.Equal(t, live1, prev)

	live2 := claudeDoc(fresh, "rt-live-2")
	f.refresh(t, live2)
	_, err = f.m.SwitchTo("alice", "operator", Force())
	require.NoError(t, err)

	prev, err = os.ReadFile(f.m.LivePath() + ".prev")
	require.NoError(t, err)
	assert.Equal(t, live2, prev, ".prev is the newest backup")
	_, gens := generations(t, f, ".credentials.json")
	require.Len(t, gens, 1)
	assert.Equal(t, live1, gens[0], "the older backup became a generation")
	fi, err := os.Stat(filepath.Join(f.dir, ".credslots", "backups"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	toks := refreshTokens(t, f.dir)
	assert.True(t, toks["rt-live-1"])
	assert.True(t, toks["rt-live-2"])
	assert.Empty(t, tempLeftovers(t, f.dir))
}

func TestHealsKeepEverySlotContent(t *testing.T) {
	f := newFixture(t)
	v0 := writeSlot(t, f.slot("bob"), fresh, "rt-bob-0")
	f.link(t, "bob")
	docs := [][]byte{v0}
	for i := 1; i <= 4; i++ {
		docs = append(docs, healInto(t, f, "bob", "rt-bob-"+string(rune('0'+i))))
		ageBackup(t, f.slot("bob")+".prev", i)
	}
	slot, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, docs[4], slot)
	prev, err := os.ReadFile(f.slot("bob") + ".prev")
	require.NoError(t, err)
	assert.Equal(t, docs[3], prev)
	_, gens := generations(t, f, ".credentials.json.bob")
	assert.Equal(t, []string{"rt-bob-0", "rt-bob-1", "rt-bob-2"}, tokensOf(gens))
	toks := refreshTokens(t, f.dir)
	for i := 0; i <= 4; i++ {
		assert.True(t, toks["rt-bob-"+string(rune('0'+i))], "token %d kept", i)
	}
}

func TestBackupGenerationsArePruned(t *testing.T) {
	f := newFixture(t, WithBackupGenerations(2))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob-0")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice-0")
	f.link(t, "bob")
	for i := 1; i <= 5; i++ {
		healInto(t, f, "bob", "rt-bob-"+string(rune('0'+i)))
		ageBackup(t, f.slot("bob")+".prev", i)
	}
	// Another file's generations are counted apart.
	_, err := f.m.SwitchTo("alice", "r")
	require.NoError(t, err)
	for i := 1; i <= 3; i++ {
		healInto(t, f, "alice", "rt-alice-"+string(rune('0'+i)))
		ageBackup(t, f.slot("alice")+".prev", i)
	}

	prev, err := os.ReadFile(f.slot("bob") + ".prev")
	require.NoError(t, err)
	assert.Equal(t, "rt-bob-4", refreshTokenOf(prev))
	_, gens := generations(t, f, ".credentials.json.bob")
	assert.Equal(t, []string{"rt-bob-2", "rt-bob-3"}, tokensOf(gens), "the newest two generations")
	_, gens = generations(t, f, ".credentials.json.alice")
	assert.Equal(t, []string{"rt-alice-0", "rt-alice-1"}, tokensOf(gens))
}

func TestBackupsList(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob-0")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "bob")
	healInto(t, f, "bob", "rt-bob-1")
	ageBackup(t, f.slot("bob")+".prev", 1)
	healInto(t, f, "bob", "rt-bob-2")
	f.refresh(t, claudeDoc(fresh, "rt-drifted"))
	_, err := f.m.SwitchTo("alice", "operator", Force())
	require.NoError(t, err)
	// Not backups: a stray file in the backups dir, a temporary.
	writeFile(t, filepath.Join(f.dir, ".credslots", "backups", "README"), []byte("x"))

	list, err := f.m.Backups()
	require.NoError(t, err)
	names, _ := generations(t, f, ".credentials.json.bob")
	require.Len(t, names, 1)
	type want struct {
		of, sub, token string
		expiry         time.Time
	}
	wants := map[string]want{
		".credentials.json.bob.prev":     {".credentials.json.bob", "bob", "rt-bob-1", fresh.Add(time.Hour)},
		".credslots/backups/" + names[0]: {".credentials.json.bob", "bob", "rt-bob-0", fresh},
		// The journal says bob was live when the drifted file was written.
		".credentials.json.prev": {".credentials.json", "bob", "rt-drifted", fresh},
	}
	require.Len(t, list, len(wants), "%+v", list)
	for i, b := range list {
		w, ok := wants[b.Name]
		require.True(t, ok, "unexpected backup %q", b.Name)
		assert.Equal(t, w.of, b.Of, b.Name)
		assert.Equal(t, w.sub, b.Sub, b.Name)
		data, err := os.ReadFile(b.Path)
		require.NoError(t, err)
		assert.Equal(t, w.token, refreshTokenOf(data), b.Name)
		assert.Equal(t, int64(len(data)), b.Size, b.Name)
		require.NotNil(t, b.Expiry, b.Name)
		assert.True(t, b.Expiry.Equal(w.expiry), "%s: expiry %s", b.Name, b.Expiry)
		assert.Equal(t, hashBytes([]byte(w.token)), b.Fingerprint, b.Name)
		assert.Equal(t, time.UTC, b.Time.Location())
		assert.False(t, b.Time.IsZero())
		if i > 0 {
			prev := list[i-1]
			assert.True(t, prev.Time.After(b.Time) || prev.Time.Equal(b.Time) && prev.Name < b.Name,
				"newest first: %s (%s) before %s (%s)", prev.Name, prev.Time, b.Name, b.Time)
		}
		assert.True(t, filepath.IsAbs(b.Path))
		assert.Equal(t, filepath.Join(f.dir, filepath.FromSlash(b.Name)), b.Path)
	}
	assert.Len(t, names[0], len(".credentials.json.bob.")+len(generationTime))

	// A backup that does not parse is listed without expiry or fingerprint.
	writeFile(t, f.slot("erik")+".prev", []byte("not json"))
	list, err = f.m.Backups()
	require.NoError(t, err)
	var found bool
	for _, b := range list {
		if b.Name == ".credentials.json.erik.prev" {
			found = true
			assert.Equal(t, "erik", b.Sub)
			assert.Nil(t, b.Expiry)
			assert.Empty(t, b.Fingerprint)
			assert.Equal(t, int64(8), b.Size)
		}
	}
	assert.True(t, found)
}

func TestBackupsEmpty(t *testing.T) {
	f := newFixture(t)
	list, err := f.m.Backups()
	require.NoError(t, err)
	assert.Empty(t, list)
	assert.NoDirExists(t, filepath.Join(f.dir, ".credslots"), "listing changes nothing")
}

func TestRestore(t *testing.T) {
	f := newFixture(t)
	v0 := writeSlot(t, f.slot("bob"), fresh, "rt-bob-0")
	f.link(t, "bob")
	healInto(t, f, "bob", "rt-bob-1")
	ageBackup(t, f.slot("bob")+".prev", 1)
	v2 := healInto(t, f, "bob", "rt-bob-2")
	ageBackup(t, f.slot("bob")+".prev", 2)
	names, _ := generations(t, f, ".credentials.json.bob")
	require.Len(t, names, 1)
	name := ".credslots/backups/" + names[0]
	journalBefore := len(journalOf(t, f.m))

	require.NoError(t, f.m.Restore(name, "bob"))

	slot, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, v0, slot, "the backup's bytes, exactly")
	fi, err := os.Stat(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	prev, err := os.ReadFile(f.slot("bob") + ".prev")
	require.NoError(t, err)
	assert.Equal(t, v2, prev, "the slot's old content is kept")
	_, gens := generations(t, f, ".credentials.json.bob")
	assert.Equal(t, []string{"rt-bob-0", "rt-bob-1"}, tokensOf(gens), "the restored generation stays, the older .prev moved")
	fp, ok := f.m.ReadStoredFingerprint("bob")
	assert.True(t, ok)
	assert.Equal(t, hashBytes([]byte("rt-bob-0")), fp, "the restored login's fingerprint is captured")

	entries := journalOf(t, f.m)
	require.Len(t, entries, journalBefore+2)
	intent, done := entries[journalBefore], entries[journalBefore+1]
	assert.Equal(t, "restore", intent.Op)
	assert.Equal(t, "intent", intent.Phase)
	assert.Equal(t, "restore", done.Op)
	assert.Equal(t, "done", done.Phase)
	assert.Equal(t, intent.ID, done.ID)
	assert.NotEmpty(t, done.ID)
	assert.Equal(t, "bob", done.Sub)
	assert.Contains(t, done.Reason, name)
	sub, _ := f.m.LastActive()
	assert.Equal(t, "bob", sub)
	assert.Empty(t, tempLeftovers(t, f.dir))

	// A live backup restored into a slot that does not exist yet.
	f.refresh(t, claudeDoc(fresh, "rt-erik"))
	_, err = f.m.SwitchTo("bob", "operator", Force())
	require.NoError(t, err)
	// The journal says bob was live when it was written: it goes into
	// another sub's slot only when forced.
	require.ErrorIs(t, f.m.Restore(".credentials.json.prev", "erik"), ErrIdentityDrift)
	require.NoError(t, f.m.Restore(".credentials.json.prev", "erik", Force()))
	got, err := os.ReadFile(f.slot("erik"))
	require.NoError(t, err)
	assert.Equal(t, "rt-erik", refreshTokenOf(got))
	assert.NoFileExists(t, f.slot("erik")+".prev", "nothing to back up")
}

func TestRestoreRefusals(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, f *fixture)
		backup   string
		sub      string
		sentinel error
	}{
		{"unknown sub", nil, ".credentials.json.bob.prev", "zed", ErrUnknownSubscription},
		{"parent path", nil, "../x", "bob", fs.ErrNotExist},
		{"parent prev", nil, "../x.prev", "bob", fs.ErrNotExist},
		{"escaping the backups dir", nil, ".credslots/backups/../../etc", "bob", fs.ErrNotExist},
		{"escaping the backups dir with a time", nil, ".credslots/backups/../../.credentials.json.alice.20260101T000000.000000000Z", "bob", fs.ErrNotExist},
		{"escaped generation name", nil, ".credslots/backups/..%2F..%2Fetc.20260101T000000.000000000Z", "bob", fs.ErrNotExist},
		{"absolute path", nil, "/etc/passwd", "bob", fs.ErrNotExist},
		{"a slot itself", nil, ".credentials.json.alice", "bob", fs.ErrNotExist},
		{"the journal", nil, ".credslots/journal.jsonl", "bob", fs.ErrNotExist},
		{"no such backup", nil, ".credentials.json.erik.prev", "bob", fs.ErrNotExist},
		{"unparseable backup", func(t *testing.T, f *fixture) {
			writeFile(t, f.slot("erik")+".prev", []byte("not json"))
		}, ".credentials.json.erik.prev", "bob", ErrUnhealable},
		{"another sub's captured login", func(t *testing.T, f *fixture) {
			_, err := f.m.CaptureSlotFingerprint("alice")
			require.NoError(t, err)
			writeFile(t, f.slot("erik")+".prev", claudeDoc(fresh.Add(time.Hour), "rt-alice"))
		}, ".credentials.json.erik.prev", "bob", ErrIdentityDrift},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			writeSlot(t, f.slot("bob"), fresh, "rt-bob-0")
			writeSlot(t, f.slot("alice"), fresh, "rt-alice")
			f.link(t, "bob")
			healInto(t, f, "bob", "rt-bob-1") // leaves a .prev and a journal
			if tt.setup != nil {
				tt.setup(t, f)
			}
			before := snapshot(t, f.dir)
			err := f.m.Restore(tt.backup, tt.sub)
			require.ErrorIs(t, err, tt.sentinel)
			assert.Equal(t, before, snapshot(t, f.dir), "a refusal changes nothing")
		})
	}
}

// TestRestoreRefusesSymlinkedBackup plants symlinks under backup names. Backups
// does not list them (they are not regular files), so Restore must not
// accept them either: it would copy whatever they point at into a slot.
func TestRestoreRefusesSymlinkedBackup(t *testing.T) {
	for _, name := range []string{
		".credentials.json.erik.prev",
		".credslots/backups/.credentials.json.bob.20260101T000000.000000000Z",
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			_, err := f.m.CaptureSlotFingerprint("bob")
			require.NoError(t, err)
			outside := filepath.Join(t.TempDir(), "someone-elses.json")
			writeFile(t, outside, claudeDoc(fresh, "rt-outsider"))
			link := filepath.Join(f.dir, filepath.FromSlash(name))
			require.NoError(t, os.MkdirAll(filepath.Dir(link), 0o700))
			require.NoError(t, os.Symlink(outside, link))

			list, err := f.m.Backups()
			require.NoError(t, err)
			for _, b := range list {
				assert.NotEqual(t, name, b.Name, "a symlink is not listed as a backup")
			}
			before := snapshot(t, f.dir)
			err = f.m.Restore(name, "erik")
			assert.Error(t, err, "a name Backups does not list is refused")
			assert.Equal(t, before, snapshot(t, f.dir), "nothing changes")
			assert.NoFileExists(t, f.slot("erik"))
		})
	}
}

// A rescued entry (maybe the only copy of a token) is the newest generation
// whatever its mtime, so pruning never drops it first.
func TestRescuedEntryIsNeverPrunedFirst(t *testing.T) {
	f := newFixture(t, WithCLILocks(false), WithBackupGenerations(1))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "bob")
	// One existing generation of the live file, made now.
	bdir := filepath.Join(f.dir, ".credslots", "backups")
	require.NoError(t, os.MkdirAll(bdir, 0o700))
	writeFile(t, filepath.Join(bdir, generationName(".credentials.json", time.Now())), []byte("{}"))
	// A killed process left the live file it swapped out under a link temp name.
	orphan := filepath.Join(f.dir, "..credentials.json"+tmpLinkMarker+"abc")
	writeSlot(t, orphan, fresh, "rt-only-copy")
	old := time.Now().Add(-10 * time.Minute)
	require.NoError(t, os.Chtimes(orphan, old, old))

	_, err := f.m.SwitchTo("alice", "x")
	require.NoError(t, err)
	backups, err := f.m.Backups()
	require.NoError(t, err)
	require.Len(t, backups, 1, "one generation kept")
	data, err := os.ReadFile(backups[0].Path)
	require.NoError(t, err)
	assert.Equal(t, "rt-only-copy", refreshTokenOf(data), "the rescued token is the one kept")
}

// A slot's .prev is written right after its earlier .prev was archived as a
// generation; the file system's clock, coarser than the one naming
// generations, may stamp it a moment earlier. Backups still lists the .prev
// as the slot's newest.
func TestASlotsPrevIsListedBeforeTheGenerationArchivedJustBeforeIt(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	at := time.Now()
	dir := filepath.Join(f.m.CredsDir(), privateDirName, backupsDirName)
	require.NoError(t, os.MkdirAll(dir, 0o700))
	writeFile(t, filepath.Join(dir, generationName(f.m.rel(f.slot("bob")), at)), claudeDoc(fresh, "rt-bob-old"))
	prev := f.slot("bob") + prevSuffix
	writeFile(t, prev, claudeDoc(fresh, "rt-bob-prev"))
	stamp := at.Add(-time.Millisecond)
	require.NoError(t, os.Chtimes(prev, stamp, stamp))
	backups, err := f.m.Backups()
	require.NoError(t, err)
	require.Len(t, backups, 2)
	assert.Equal(t, filepath.Base(prev), backups[0].Name)
}

// A restore whose slot write lands and whose directory sync then fails:
// the restored login is captured all the same, and the next switch to the
// sub is no identity drift.
func TestARestoreWhoseSyncFailedAfterTheSlotWriteCapturesTheLogin(t *testing.T) {
	ffs := &faultFS{inner: disk.OS{}, failAt: -1}
	f := newFixture(t, withFS(ffs))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob-0")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "alice")
	_, err := f.m.SwitchTo("alice", "start")
	require.NoError(t, err)
	_, err = f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	writeSlot(t, f.slot("bob"), fresh.Add(time.Hour), "rt-bob-1")
	_, err = f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	// bob's earlier login as a backup generation of its slot.
	require.NoError(t, f.m.keepBackup(f.slot("bob"), claudeDoc(fresh, "rt-bob-0")))
	armed := false
	ffs.before = func(op, name string) {
		switch {
		case op == "rename" && strings.HasSuffix(name, ".credentials.json.bob"):
			armed = true
		case armed && op == "syncdir":
			armed = false
			ffs.mu.Lock()
			ffs.failAt = ffs.n + 1
			ffs.mu.Unlock()
		}
	}
	err = f.m.Restore(".credentials.json.bob.prev", "bob")
	require.ErrorIs(t, err, errInjected)
	ffs.before = nil
	got, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	require.Equal(t, "rt-bob-0", refreshTokenOf(got), "the restore's slot write landed")
	fp, ok := f.m.ReadStoredFingerprint("bob")
	require.True(t, ok)
	assert.Equal(t, hashBytes([]byte("rt-bob-0")), fp)
	_, err = f.m.SwitchTo("bob", "rotate")
	require.NoError(t, err)
}
