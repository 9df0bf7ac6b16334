package disk

import (
	"fmt"
	"sync"
)

// ReadRegular reads the regular file at name (following symlinks) without
// ever blocking on it and without reading more than MaxFileSize: a FIFO,
// socket or device is refused as "not a regular file" (it is opened
// non-blocking, so nothing waits for a writer), and a larger file returns an
// error wrapping ErrTooLarge. On Unix it makes exactly the system calls
// open, fstat, read and close, and allocates only the data's buffer; a
// file that reports no size (as in /proc) is read until its end.
func ReadRegular(name string) ([]byte, error) {
	data, _, err := ReadRegularMode(name, MaxFileSize)
	return data, err
}

// ReadRegularMax is readRegular with another bound.
func ReadRegularMax(name string, limit int64) ([]byte, error) {
	data, _, err := ReadRegularMode(name, limit)
	return data, err
}

// TooLarge is the error for a file over limit bytes.
func TooLarge(name string, limit int64) error {
	return fmt.Errorf("credslots: %s is larger than %d bytes: %w", name, limit, ErrTooLarge)
}

// bufPool holds read buffers for callers that look at what they read only
// until they return (a check that hashes or parses a file and keeps
// nothing of its bytes).
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

// maxPooled is the largest buffer PutBuffer keeps: a rare large file does
// not pin its memory in the pool.
const maxPooled = 64 << 10

// GetBuffer returns an empty read buffer from the pool, for
// [ReadRegularInto] and [FS.ReadFileInto]. Give it back with PutBuffer.
func GetBuffer() *[]byte { return bufPool.Get().(*[]byte) }

// PutBuffer gives b back to the pool once the caller is done with data,
// what a read into *b returned (nil after a failed read): data's bytes are
// cleared first (credential bytes never linger in the pool), and when the
// read had to take a larger buffer than *b, that one is kept instead.
// Nothing of *b or data may be used afterwards.
func PutBuffer(b *[]byte, data []byte) {
	clear(data)
	if cap(*b) > 0 && (cap(data) == 0 || &data[:1][0] != &(*b)[:1][0]) {
		// The read outgrew *b (a file that reports no size): what it
		// had put there first is cleared too.
		clear((*b)[:cap(*b)])
	}
	if cap(data) > cap(*b) && cap(data) <= maxPooled {
		*b = data
	}
	if cap(*b) > maxPooled {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}
