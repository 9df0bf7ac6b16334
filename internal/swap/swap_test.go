package swap

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// logFS records the operations made through it and can make the platform
// look like one without an atomic exchange, or fail the directory sync.
type logFS struct {
	disk.FS
	log        []string
	noExchange bool
	syncErr    error
	// beforeExchange runs before the first exchange: a concurrent writer.
	beforeExchange func()
}

func (f *logFS) note(op, name string) { f.log = append(f.log, op+" "+filepath.Base(name)) }

func (f *logFS) ReadFile(name string) ([]byte, error) {
	f.note("read", name)
	return f.FS.ReadFile(name)
}

func (f *logFS) Readlink(name string) (string, error) {
	f.note("readlink", name)
	return f.FS.Readlink(name)
}

func (f *logFS) Lstat(name string) (os.FileInfo, error) {
	f.note("lstat", name)
	return f.FS.Lstat(name)
}

func (f *logFS) Exchange(a, b string) error {
	f.note("exchange", b)
	if f.beforeExchange != nil {
		f.beforeExchange()
		f.beforeExchange = nil
	}
	if f.noExchange {
		return disk.ErrExchangeUnsupported
	}
	return f.FS.Exchange(a, b)
}

func (f *logFS) RenameNoReplace(from, to string) error {
	if f.noExchange {
		return disk.ErrExchangeUnsupported
	}
	return f.FS.RenameNoReplace(from, to)
}

func (f *logFS) SyncDir(dir string) error {
	f.note("syncdir", dir)
	if f.syncErr != nil {
		return f.syncErr
	}
	return f.FS.SyncDir(dir)
}

func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	names, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, n := range names {
		if strings.Contains(n.Name(), TempLinkMarker) {
			out = append(out, n.Name())
		}
	}
	return out
}

func setup(t *testing.T) (dir, live string) {
	t.Helper()
	dir = t.TempDir()
	live = filepath.Join(dir, "live")
	for _, s := range []string{"a", "b"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, s), []byte("slot "+s), 0o600))
	}
	return dir, live
}

func TestInspect(t *testing.T) {
	dir, live := setup(t)
	e, err := Inspect(disk.OS{}, live)
	require.NoError(t, err)
	assert.Equal(t, KindMissing, e.Kind)

	require.NoError(t, os.Symlink("a", live))
	e, err = Inspect(disk.OS{}, live)
	require.NoError(t, err)
	assert.Equal(t, KindSymlink, e.Kind)
	assert.Equal(t, "a", e.Target)
	assert.Equal(t, "slot a", string(e.Data))
	assert.Equal(t, Hash([]byte("slot a")), e.Hash)

	require.NoError(t, os.Remove(live))
	require.NoError(t, os.Symlink("nowhere", live))
	e, err = Inspect(disk.OS{}, live)
	require.NoError(t, err)
	assert.Equal(t, KindBrokenSymlink, e.Kind)

	require.NoError(t, os.Remove(live))
	require.NoError(t, os.WriteFile(live, []byte("file"), 0o640))
	e, err = Inspect(disk.OS{}, live)
	require.NoError(t, err)
	assert.Equal(t, KindFile, e.Kind)
	assert.Equal(t, os.FileMode(0o640), e.Perm)
	assert.False(t, e.Mtime.IsZero())

	require.NoError(t, os.Remove(live))
	require.NoError(t, os.Mkdir(live, 0o700))
	e, err = Inspect(disk.OS{}, live)
	assert.Error(t, err)
	assert.Equal(t, KindOther, e.Kind)
	_ = dir
}

func TestSymlink(t *testing.T) {
	for _, noExchange := range []bool{false, true} {
		name := map[bool]string{false: "exchange", true: "check then rename"}[noExchange]
		t.Run(name+": symlink replaced", func(t *testing.T) {
			dir, live := setup(t)
			require.NoError(t, os.Symlink("a", live))
			want, err := Inspect(disk.OS{}, live)
			require.NoError(t, err)
			fsys := &logFS{FS: disk.OS{}, noExchange: noExchange}
			require.NoError(t, Symlink(fsys, live, "b", want, func(string) { t.Fatal("nothing to rescue") }))
			got, err := os.Readlink(live)
			require.NoError(t, err)
			assert.Equal(t, "b", got)
			assert.Empty(t, leftovers(t, dir))
		})
		t.Run(name+": the validated file replaced", func(t *testing.T) {
			dir, live := setup(t)
			require.NoError(t, os.WriteFile(live, []byte("token"), 0o600))
			want, err := Inspect(disk.OS{}, live)
			require.NoError(t, err)
			require.NoError(t, Symlink(&logFS{FS: disk.OS{}, noExchange: noExchange}, live, "b", want, func(string) {}))
			got, err := os.Readlink(live)
			require.NoError(t, err)
			assert.Equal(t, "b", got)
			assert.Empty(t, leftovers(t, dir))
		})
		t.Run(name+": a newer file is kept", func(t *testing.T) {
			dir, live := setup(t)
			require.NoError(t, os.Symlink("a", live))
			want, err := Inspect(disk.OS{}, live)
			require.NoError(t, err)
			fsys := &logFS{FS: disk.OS{}, noExchange: noExchange, beforeExchange: func() {
				// A CLI writes a refreshed token over the live symlink.
				require.NoError(t, os.WriteFile(live+".new", []byte("newer"), 0o600))
				require.NoError(t, os.Rename(live+".new", live))
			}}
			err = Symlink(fsys, live, "b", want, func(string) { t.Fatal("swapped back: nothing to rescue") })
			require.ErrorIs(t, err, ErrChanged)
			var after *AfterChange
			assert.False(t, errors.As(err, &after), "the live path is as the writer left it")
			data, rerr := os.ReadFile(live)
			require.NoError(t, rerr)
			assert.Equal(t, "newer", string(data))
			fi, lerr := os.Lstat(live)
			require.NoError(t, lerr)
			assert.True(t, fi.Mode().IsRegular())
			assert.Empty(t, leftovers(t, dir))
		})
		t.Run(name+": missing path", func(t *testing.T) {
			dir, live := setup(t)
			require.NoError(t, Symlink(&logFS{FS: disk.OS{}, noExchange: noExchange}, live, "a", Entry{Kind: KindMissing}, func(string) {}))
			got, err := os.Readlink(live)
			require.NoError(t, err)
			assert.Equal(t, "a", got)
			assert.Empty(t, leftovers(t, dir))
		})
	}
}

// TestSettleReadsALinkOnce: a symlink taken out of the path is proven one
// by a readlink (it holds no data); a regular file taken out is read and
// compared in full.
func TestSettleReadsALinkOnce(t *testing.T) {
	_, live := setup(t)
	require.NoError(t, os.Symlink("a", live))
	want, err := Inspect(disk.OS{}, live)
	require.NoError(t, err)
	fsys := &logFS{FS: disk.OS{}}
	require.NoError(t, Symlink(fsys, live, "b", want, func(string) {}))
	require.Len(t, fsys.log, 3)
	assert.Equal(t, "exchange live", fsys.log[0])
	assert.True(t, strings.HasPrefix(fsys.log[1], "readlink .live"+TempLinkMarker), fsys.log[1])
	assert.Equal(t, "syncdir "+filepath.Base(filepath.Dir(live)), fsys.log[2])

	require.NoError(t, os.Remove(live))
	require.NoError(t, os.WriteFile(live, []byte("token"), 0o600))
	want, err = Inspect(disk.OS{}, live)
	require.NoError(t, err)
	fsys = &logFS{FS: disk.OS{}}
	require.NoError(t, Symlink(fsys, live, "b", want, func(string) {}))
	var read bool
	for _, op := range fsys.log {
		read = read || strings.HasPrefix(op, "read .live")
	}
	assert.True(t, read, "a file taken out is read and compared: %v", fsys.log)
}

func TestSyncFailureAfterTheChange(t *testing.T) {
	_, live := setup(t)
	require.NoError(t, os.Symlink("a", live))
	want, err := Inspect(disk.OS{}, live)
	require.NoError(t, err)
	boom := errors.New("sync failed")
	err = Symlink(&logFS{FS: disk.OS{}, syncErr: boom, noExchange: true}, live, "b", want, func(string) {})
	var after *AfterChange
	require.True(t, errors.As(err, &after), "%v", err)
	assert.ErrorIs(t, err, boom)
	got, _ := os.Readlink(live)
	assert.Equal(t, "b", got, "the rename happened")
}

func BenchmarkSymlink(b *testing.B) {
	dir := b.TempDir()
	live := filepath.Join(dir, "live")
	for _, s := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(dir, s), []byte("slot "+s), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.Symlink("a", live); err != nil {
		b.Fatal(err)
	}
	targets := []string{"a", "b"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := Symlink(disk.OS{}, live, targets[i%2], Entry{Kind: KindSymlink}, func(string) {}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTempLinkPrefix: the temporary's name is the one filepath would join
// beside a clean destination.
func TestTempLinkPrefix(t *testing.T) {
	for _, dest := range []string{"/a/b/.credentials.json", "/x", "rel/auth.json", "auth.json", "/a/b.c/d"} {
		want := filepath.Join(filepath.Dir(dest), "."+filepath.Base(dest)+TempLinkMarker)
		assert.Equal(t, want, tempLinkPrefix(dest), dest)
	}
}

// TestTempLinkNameIsReusedAndNeverTaken: every swap tries the same
// temporary name first (removed by the swap before it, so free again); a
// name already taken, a killed swap's leftover that may hold the only copy
// of a login, is left as it is and a random name is used.
func TestTempLinkNameIsReusedAndNeverTaken(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, ".live")
	require.NoError(t, os.Symlink("a", live))
	fixed := tempLinkPrefix(live) + "0"
	var names []string
	fsys := &nameFS{FS: disk.OS{}, made: &names}
	for _, target := range []string{"b", "a"} {
		require.NoError(t, Symlink(fsys, live, target, Entry{Kind: KindSymlink}, func(string) { t.Fatal("nothing to rescue") }))
	}
	assert.Equal(t, []string{fixed, fixed}, names, "the same name each time")
	assert.Empty(t, leftovers(t, dir))

	leftover := []byte(`{"only":"copy"}`)
	require.NoError(t, os.WriteFile(fixed, leftover, 0o600))
	names = nil
	require.NoError(t, Symlink(fsys, live, "b", Entry{Kind: KindSymlink}, func(string) { t.Fatal("nothing to rescue") }))
	require.Len(t, names, 2)
	assert.Equal(t, fixed, names[0])
	assert.NotEqual(t, fixed, names[1], "a random name when the fixed one is taken")
	assert.True(t, strings.HasPrefix(names[1], tempLinkPrefix(live)), names[1])
	got, err := os.ReadFile(fixed)
	require.NoError(t, err)
	assert.Equal(t, leftover, got, "the leftover is untouched")
	target, err := os.Readlink(live)
	require.NoError(t, err)
	assert.Equal(t, "b", target)
	assert.Equal(t, []string{filepath.Base(fixed)}, leftovers(t, dir), "only the leftover remains")
}

// nameFS records the names symlinks are made at, made or not.
type nameFS struct {
	disk.FS
	made *[]string
}

func (f *nameFS) Symlink(target, name string) error {
	*f.made = append(*f.made, name)
	return f.FS.Symlink(target, name)
}
