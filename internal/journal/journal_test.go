package journal

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendStringIsEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "<&>", "\n\r\t\b\f\x00\x1f\x7f", "é\u2028\u2029", "\xff\xc3", "a\xffb"} {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(AppendString(nil, s)), "%q", s)
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("bob")
	f.Add("\xff<\u2028\"\\\x01")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		got := AppendString([]byte("x"), s)
		if string(got[1:]) != string(want) {
			t.Fatalf("encoding/json %s, AppendString %s", want, got[1:])
		}
		var back string
		if err := json.Unmarshal(got[1:], &back); err != nil {
			t.Fatalf("does not decode: %v", err)
		}
	})
}

func TestAppendTimeIsEncodingJSON(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 12, 0, 0, 120000000, time.UTC),
		time.Date(2026, 1, 1, 12, 0, 0, 1, time.FixedZone("x", 5*3600+1800)),
		{},
	} {
		want, err := json.Marshal(tm)
		require.NoError(t, err)
		got, err := AppendTime(nil, tm)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got))
	}
	_, err := AppendTime(nil, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	assert.Error(t, err)
}

func TestAppendKey(t *testing.T) {
	b := AppendKey([]byte("{"), "a")
	b = append(b, '1')
	b = AppendKey(b, "b")
	b = append(b, "[1]}"...)
	assert.Equal(t, `{"a":1,"b":[1]}`, string(b))
}

func TestLinesAndBackward(t *testing.T) {
	data := []byte("a\n\n  \nb\nc")
	var fwd []string
	var nums []int
	Lines(data, func(n int, line []byte) { fwd = append(fwd, string(line)); nums = append(nums, n) })
	assert.Equal(t, []string{"a", "b", "c"}, fwd)
	assert.Equal(t, []int{1, 4, 5}, nums)
	var back []string
	Backward(data, func(line []byte) bool { back = append(back, string(line)); return len(back) < 2 })
	assert.Equal(t, []string{"c", "b"}, back, "newest first, stops when told")
	back = nil
	Backward([]byte("x\ny\n\n"), func(line []byte) bool { back = append(back, string(line)); return true })
	assert.Equal(t, []string{"y", "x"}, back)
	assert.Equal(t, "b\n", string(FromFirstLine([]byte("ta\nb\n"))))
	assert.Nil(t, FromFirstLine([]byte("no newline")))
}

func TestKeep(t *testing.T) {
	data := []byte("old1\nkeep-me\nold2\nnew1\nnew2\n")
	var seen []string
	got := Keep(data, len("new1\nnew2\n"), func(line []byte) bool {
		seen = append(seen, string(line))
		return string(line) == "keep-me"
	})
	assert.Equal(t, "keep-me\nnew1\nnew2\n", string(got))
	assert.Equal(t, []string{"old1", "keep-me", "old2"}, seen, "only the older lines are filtered")
	assert.Equal(t, string(data), string(Keep(data, 1<<20, nil)), "all fits")
	assert.Equal(t, "new2\n", string(Keep(data, 6, nil)))
	assert.Equal(t, "", string(Keep([]byte("a-long-torn-line"), 3, nil)), "a last line over the bound")
	assert.Equal(t, "b\n", string(Keep([]byte("a\n\nb\n"), 2, func(l []byte) bool { return len(l) == 0 })), "blank lines are not offered")
}

func TestAppend(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.jsonl")
	_, err := Append(disk.OS{}, path, []byte("a\n"), true, false)
	require.ErrorIs(t, err, fs.ErrNotExist, "no create: a missing journal is reported")
	size, err := Append(disk.OS{}, path, []byte("a\n"), true, true)
	require.NoError(t, err)
	assert.Equal(t, int64(2), size)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	// A line torn by a crash: the next record starts on a new line.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"torn`)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	size, err = Append(disk.OS{}, path, []byte("b\n"), false, false)
	require.NoError(t, err)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "a\n{\"torn\nb\n", string(data))
	assert.Equal(t, int64(len(data)-1), size, "the size before the write plus the record (the added newline aside)")

	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(path, link))
	_, err = Append(disk.OS{}, link, []byte("x\n"), false, true)
	assert.True(t, errors.Is(err, disk.ErrNotRegular), "never through a symlink: %v", err)
	_, err = Append(disk.OS{}, dir, []byte("x\n"), false, true)
	assert.True(t, errors.Is(err, disk.ErrNotRegular), "not a directory: %v", err)
	data, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.False(t, strings.Contains(string(data), "x"))
}

func BenchmarkAppendLine(b *testing.B) {
	buf := make([]byte, 0, 512)
	tm := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = append(buf[:0], '{')
		buf = AppendKey(buf, "time")
		buf, _ = AppendTime(buf, tm)
		buf = AppendString(AppendKey(buf, "op"), "switch")
		buf = AppendString(AppendKey(buf, "reason"), "quota <reached>")
		buf = append(buf, '}')
	}
}

func BenchmarkAppend(b *testing.B) {
	path := filepath.Join(b.TempDir(), "journal.jsonl")
	line := []byte(`{"time":"2026-01-01T12:00:00Z","op":"switch","phase":"done","sub":"bob"}` + "\n")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Append(disk.OS{}, path, line, false, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKeep(b *testing.B) {
	line := `{"time":"2026-01-01T12:00:00Z","op":"capture","phase":"done","sub":"bob","reason":"` + strings.Repeat("x", 200) + `"}` + "\n"
	data := []byte(strings.Repeat(line, (256<<10)/len(line)+1))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Keep(data, 128<<10, func([]byte) bool { return false })
	}
}

func TestReadPastTheBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	big := strings.Repeat("x", disk.MaxFileSize) + "\nnewest\n"
	require.NoError(t, os.WriteFile(path, []byte(big), 0o600))
	data, tailed, err := Read(disk.OS{}, path)
	require.NoError(t, err)
	assert.True(t, tailed)
	assert.Equal(t, "newest\n", string(data), "from the first whole line of the tail")
	require.NoError(t, os.WriteFile(path, []byte("a\n"), 0o600))
	data, tailed, err = Read(disk.OS{}, path)
	require.NoError(t, err)
	assert.False(t, tailed)
	assert.Equal(t, "a\n", string(data))
	_, _, err = Read(disk.OS{}, path+".missing")
	assert.ErrorIs(t, err, fs.ErrNotExist)
}
