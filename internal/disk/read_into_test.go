//go:build unix

package disk

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadRegularIntoUsesTheBufferWhenTheFileFits(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	writeFile(t, small, []byte("credential"))
	buf := make([]byte, 0, 64)
	data, err := ReadRegularInto(small, buf, MaxFileSize)
	require.NoError(t, err)
	assert.Equal(t, "credential", string(data))
	assert.Same(t, &buf[:1][0], &data[0], "read into the caller's buffer")

	big := filepath.Join(dir, "big")
	writeFile(t, big, bytes.Repeat([]byte{'x'}, 100))
	data, err = ReadRegularInto(big, buf, MaxFileSize)
	require.NoError(t, err)
	assert.Len(t, data, 100)
	assert.NotSame(t, &buf[:1][0], &data[0], "a larger file gets a buffer of its own")
}

// The reader's refusals hold whatever the buffer: a FIFO (with or without
// a writer, with data waiting or not) never blocks and is not read, a
// directory or a device is no regular file, a file over the bound is too
// large and one exactly at it is read whole.
func TestReadRegularIntoRefusals(t *testing.T) {
	dir := t.TempDir()
	buf := make([]byte, 0, 4096)

	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	done := make(chan error, 1)
	go func() {
		_, err := ReadRegularInto(fifo, buf, MaxFileSize)
		done <- err
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrNotRegular, "a FIFO without a writer")
	case <-time.After(5 * time.Second):
		// Wake it so the goroutine ends.
		if fd, err := syscall.Open(fifo, syscall.O_RDWR|syscall.O_NONBLOCK, 0); err == nil {
			_ = syscall.Close(fd)
		}
		t.Fatal("reading a FIFO blocked")
	}
	// A writer that left data in the FIFO: still refused, nothing read.
	wfd, err := syscall.Open(fifo, syscall.O_RDWR|syscall.O_NONBLOCK, 0)
	require.NoError(t, err)
	defer syscall.Close(wfd)
	_, err = syscall.Write(wfd, []byte(`{"claudeAiOauth":{}}`))
	require.NoError(t, err)
	_, err = ReadRegularInto(fifo, buf, MaxFileSize)
	require.ErrorIs(t, err, ErrNotRegular, "a FIFO holding data")
	left := make([]byte, 64)
	n, err := syscall.Read(wfd, left)
	require.NoError(t, err)
	assert.Equal(t, `{"claudeAiOauth":{}}`, string(left[:n]), "the reader took nothing from the FIFO")

	_, err = ReadRegularInto(dir, buf, MaxFileSize)
	require.ErrorIs(t, err, ErrNotRegular, "a directory")
	_, err = ReadRegularInto(os.DevNull, buf, MaxFileSize)
	require.ErrorIs(t, err, ErrNotRegular, "a device")
	if _, err := os.Stat("/dev/zero"); err == nil {
		_, err = ReadRegularInto("/dev/zero", buf, MaxFileSize)
		require.ErrorIs(t, err, ErrNotRegular, "an endless device")
	}

	exact := bytes.Repeat([]byte{'x'}, MaxFileSize)
	exact[0], exact[len(exact)-1] = 'a', 'z'
	at := filepath.Join(dir, "exact")
	writeFile(t, at, exact)
	data, err := ReadRegularInto(at, buf, MaxFileSize)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(exact, data), "exactly 1 MiB is read whole")
	over := filepath.Join(dir, "over")
	writeFile(t, over, append(exact, '!'))
	_, err = ReadRegularInto(over, buf, MaxFileSize)
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), over)
	assert.Contains(t, err.Error(), "1048576")

	_, err = ReadRegularInto(filepath.Join(dir, "missing"), buf, MaxFileSize)
	require.ErrorIs(t, err, fs.ErrNotExist)
	long := filepath.Join(dir, strings.Repeat("d", 200), strings.Repeat("e", 200), "f")
	require.NoError(t, os.MkdirAll(filepath.Dir(long), 0o700))
	writeFile(t, long, []byte("past the stack name"))
	data, err = ReadRegularInto(long, buf, MaxFileSize)
	require.NoError(t, err, "a name longer than the open's stack buffer")
	assert.Equal(t, "past the stack name", string(data))
	_, err = ReadRegularInto("bad\x00name", buf, MaxFileSize)
	require.Error(t, err, "a name holding NUL")
}

func TestPutBufferClearsAndKeepsTheLargerBuffer(t *testing.T) {
	b := GetBuffer()
	data := append((*b)[:0], "secret-token"...)
	PutBuffer(b, data)
	assert.Equal(t, make([]byte, len("secret-token")), data[:len("secret-token")], "cleared before it goes back")

	b = GetBuffer()
	grown := make([]byte, 10, maxPooled)
	copy(grown, "0123456789")
	PutBuffer(b, grown)
	assert.Equal(t, make([]byte, 10), grown, "a larger buffer is cleared too")
	assert.Equal(t, maxPooled, cap(*b), "and kept")

	huge := make([]byte, 1, maxPooled+1)
	b2 := GetBuffer()
	before := cap(*b2)
	PutBuffer(b2, huge)
	assert.Equal(t, before, cap(*b2), "a buffer past maxPooled is not kept")

	b4 := GetBuffer()
	first := (*b4)[:cap(*b4)]
	copy(first, "left")
	PutBuffer(b4, make([]byte, 0, 2*cap(first)))
	assert.NotContains(t, string(first), "left", "a read that outgrew the buffer: the buffer it left is cleared too")
	b5 := GetBuffer()
	first = (*b5)[:cap(*b5)]
	copy(first, "half")
	PutBuffer(b5, nil)
	assert.NotContains(t, string(first), "half", "a read that failed midway")

	b3 := GetBuffer()
	*b3 = make([]byte, 0, maxPooled+1)
	PutBuffer(b3, nil)
	for i := 0; i < 10; i++ {
		assert.LessOrEqual(t, cap(*GetBuffer()), maxPooled, "a caller's own large buffer does not go into the pool")
	}
}

func TestStatModeAndReadlinkInto(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	writeFile(t, file, []byte("x"))
	require.NoError(t, os.Chmod(file, 0o640))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink("f", link))
	for _, name := range []string{file, link, dir, os.DevNull} {
		want, err := os.Stat(name)
		require.NoError(t, err)
		got, err := StatMode(name)
		require.NoError(t, err)
		assert.Equal(t, want.Mode(), got, name)
	}
	_, err := StatMode(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, fs.ErrNotExist)

	buf := make([]byte, 16)
	n, err := ReadlinkInto(link, buf)
	require.NoError(t, err)
	assert.Equal(t, "f", string(buf[:n]))
	_, err = ReadlinkInto(file, buf)
	require.Error(t, err, "not a symlink")
	_, err = ReadlinkInto(filepath.Join(dir, "missing"), buf)
	require.ErrorIs(t, err, fs.ErrNotExist)
	longLink := filepath.Join(dir, "long")
	require.NoError(t, os.Symlink(strings.Repeat("t", 16), longLink))
	_, err = ReadlinkInto(longLink, buf)
	require.True(t, errors.Is(err, ErrLinkTooLong), "a target that fills the buffer: %v", err)
}
