package disk

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

func TestReadRegularLimit(t *testing.T) {
	dir := t.TempDir()
	exact := bytes.Repeat([]byte{'x'}, MaxFileSize)
	exact[0], exact[len(exact)-1] = 'a', 'z'
	path := filepath.Join(dir, "exact")
	writeFile(t, path, exact)
	got, err := ReadRegular(path)
	require.NoError(t, err, "exactly 1 MiB is read")
	assert.True(t, bytes.Equal(exact, got), "exactly 1 MiB is read whole")

	over := filepath.Join(dir, "over")
	writeFile(t, over, append(exact, '!'))
	_, err = ReadRegular(over)
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), over)
	assert.Contains(t, err.Error(), "1048576")
	_, err = OS{}.ReadFile(over)
	require.ErrorIs(t, err, ErrTooLarge)

	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, nil)
	got, err = ReadRegular(empty)
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestReadRegularRefusesWhatIsNoFile(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "dir")
	require.NoError(t, os.Mkdir(sub, 0o700))
	_, err := ReadRegular(sub)
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrNotRegular) || strings.Contains(err.Error(), "directory"), "%v", err)

	if _, err := os.Stat(os.DevNull); err == nil {
		_, err = ReadRegular(os.DevNull)
		require.ErrorIs(t, err, ErrNotRegular, "a device is no file")
	}

	_, err = ReadRegular(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestReadRegularMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	writeFile(t, path, []byte("data"))
	require.NoError(t, os.Chmod(path, 0o640))
	data, perm, err := ReadRegularMode(path, MaxFileSize)
	require.NoError(t, err)
	assert.Equal(t, "data", string(data))
	assert.Equal(t, fs.FileMode(0o640), perm)
	_, _, err = ReadRegularMode(path, 3)
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestReadRegularTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	writeFile(t, path, []byte("0123456789"))
	for _, tc := range []struct {
		limit int64
		want  string
	}{{4, "6789"}, {10, "0123456789"}, {100, "0123456789"}, {0, ""}} {
		got, err := ReadRegularTail(path, tc.limit)
		require.NoError(t, err)
		assert.Equal(t, tc.want, string(got), "limit %d", tc.limit)
	}
}

func TestAppendStartsATornLineAfresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	require.NoError(t, OS{}.Append(path, []byte("a\n"), true))
	require.NoError(t, OS{}.Append(path, []byte("b\n"), false))
	writeFile(t, path, []byte("a\nb\ntorn"))
	require.NoError(t, OS{}.Append(path, []byte("c\n"), false))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "a\nb\ntorn\nc\n", string(got))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())

	link := filepath.Join(filepath.Dir(path), "link")
	require.NoError(t, os.Symlink(path, link))
	require.Error(t, OS{}.Append(link, []byte("x\n"), false), "never through a symlink")
}

func TestExchangeAndRenameNoReplace(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeFile(t, a, []byte("A"))
	writeFile(t, b, []byte("B"))
	err := Exchange(a, b)
	if errors.Is(err, ErrExchangeUnsupported) {
		require.ErrorIs(t, RenameNoReplace(a, b), ErrExchangeUnsupported)
		return
	}
	require.NoError(t, err)
	got, _ := os.ReadFile(a)
	assert.Equal(t, "B", string(got))
	got, _ = os.ReadFile(b)
	assert.Equal(t, "A", string(got))

	require.ErrorIs(t, RenameNoReplace(a, b), fs.ErrExist)
	require.ErrorIs(t, Exchange(a, filepath.Join(dir, "none")), fs.ErrNotExist)
	require.NoError(t, RenameNoReplace(a, filepath.Join(dir, "c")))
}

func TestTryLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	unlock, ok, err := TryLock(path)
	require.NoError(t, err)
	require.True(t, ok)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
	_, ok, err = TryLock(path)
	require.NoError(t, err)
	assert.False(t, ok, "a second holder is refused")
	require.NoError(t, unlock())
	unlock, ok, err = TryLock(path)
	require.NoError(t, err)
	require.True(t, ok, "free again once released")
	require.NoError(t, unlock())

	_, _, err = LockOpen(filepath.Join(filepath.Dir(path), "missing"), false)
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func FuzzReadRegular(f *testing.F) {
	f.Add([]byte(`{"claudeAiOauth":{}}`), uint32(0))
	f.Add([]byte{}, uint32(0))
	f.Add([]byte{}, uint32(MaxFileSize))
	f.Add([]byte("x"), uint32(MaxFileSize-1))
	f.Add([]byte("x"), uint32(MaxFileSize))
	f.Add([]byte("\x00\xff"), uint32(4095))
	// One file, rewritten by each run: a directory a run made the fuzzer
	// slow enough to miss its deadline.
	path := filepath.Join(f.TempDir(), "f")
	f.Fuzz(func(t *testing.T, data []byte, grow uint32) {
		// grow pads the file with zeros (a sparse tail) up to 2 MiB more,
		// which puts sizes on both sides of the limit.
		size := int64(len(data)) + int64(grow%(2*MaxFileSize))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
		got, err := ReadRegular(path)
		if size > MaxFileSize {
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "1048576") {
				t.Fatalf("a %d-byte file: err %v, want ErrTooLarge naming the path and the limit", size, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("a %d-byte file: %v", size, err)
		}
		want := make([]byte, size)
		copy(want, data)
		if !bytes.Equal(got, want) {
			t.Fatalf("a %d-byte file read back as %d different bytes", size, len(got))
		}
	})
}
