package journal

import (
	"bytes"
	"errors"

	"github.com/gptme/credslots/internal/disk"
)

// Append appends one record (a line ending in a newline) to path through
// fsys, fsynced when durable, and returns the journal's size after it.
// create makes a missing journal; without it a missing one is
// fs.ErrNotExist, so that the caller can write the journal's first records
// (a migration) before it. A journal whose last line a crash tore gets a
// newline first: the torn line stays malformed, the record stays whole.
func Append(fsys disk.FS, path string, line []byte, durable, create bool) (int64, error) {
	before, err := fsys.AppendRecord(path, line, durable, create)
	if err != nil {
		return before, err
	}
	return before + int64(len(line)), nil
}

// Open is Append that keeps the journal open for the records that follow
// (see disk.FS's OpenRecord): the caller appends them through the returned
// file, with one write each, only while it holds the lock every writer of
// the journal takes, so that the file still ends with the line it wrote
// last, and closes the file before the journal is rotated.
func Open(fsys disk.FS, path string, line []byte, durable, create bool) (int64, disk.RecordFile, error) {
	before, f, err := fsys.OpenRecord(path, line, durable, create)
	if err != nil {
		return before, nil, err
	}
	return before + int64(len(line)), f, nil
}

// Read reads the journal at path through fsys. One grown past the reader's
// bound (disk.MaxFileSize) is read from its tail, the newest records, from
// its first whole line on, and tailed is true: never an error.
func Read(fsys disk.FS, path string) (data []byte, tailed bool, err error) {
	data, err = fsys.ReadFile(path)
	if !errors.Is(err, disk.ErrTooLarge) {
		return data, false, err
	}
	data, err = fsys.ReadFileTail(path, disk.MaxFileSize)
	if err != nil {
		return nil, false, err
	}
	return FromFirstLine(data), true, nil
}

// FromFirstLine drops what comes before the first whole line of data: the
// tail of a journal read from an offset starts mid-record.
func FromFirstLine(data []byte) []byte {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return data[i+1:]
	}
	return nil
}

// Lines calls fn with each line of data that is not blank, oldest first,
// without its newline; n is the line's 1-based number in data.
func Lines(data []byte, fn func(n int, line []byte)) {
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(bytes.TrimSpace(line)) > 0 {
			fn(n, line)
		}
	}
}

// Backward calls fn with each line of data that is not blank, newest
// first, without its newline, until fn returns false.
func Backward(data []byte, fn func(line []byte) bool) {
	end := len(data)
	for end > 0 {
		start := bytes.LastIndexByte(data[:end], '\n') + 1
		if start == end { // the newline ending the line before
			end--
			continue
		}
		line := data[start:end]
		end = start
		if len(bytes.TrimSpace(line)) > 0 && !fn(line) {
			return
		}
	}
}

// Keep returns the journal data rotated: its newest whole lines that fit
// in keep bytes, preceded by those older lines that mustKeep accepts (in
// their order). mustKeep sees each older line without its newline; nil keeps
// none of them. Lines are found bytewise: nothing is decoded here.
func Keep(data []byte, keep int, mustKeep func(line []byte) bool) []byte {
	// start is where the newest lines that fit begin.
	start := len(data)
	for start > 0 {
		prev := bytes.LastIndexByte(data[:start-1], '\n') + 1
		if len(data)-prev > keep {
			break
		}
		start = prev
	}
	if start == 0 {
		return append([]byte(nil), data...)
	}
	out := make([]byte, 0, len(data)-start+1<<10)
	if mustKeep != nil {
		old := data[:start]
		for len(old) > 0 {
			line, rest := old, []byte(nil)
			if i := bytes.IndexByte(old, '\n'); i >= 0 {
				line, rest = old[:i+1], old[i+1:]
			}
			old = rest
			if len(bytes.TrimSpace(line)) > 0 && mustKeep(bytes.TrimSuffix(line, []byte("\n"))) {
				out = append(out, line...)
			}
		}
	}
	return append(out, data[start:]...)
}
