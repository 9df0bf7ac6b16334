package credslots

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// maxFileSize bounds every file the package reads: credentials, sidecars,
// the journal, backups and busy-signal files.
const maxFileSize = 1 << 20

// readRegular reads the regular file at name (following symlinks) without
// ever blocking on it and without reading more than maxFileSize: a FIFO,
// socket or device is refused as "not a regular file" (it is opened
// non-blocking, so nothing waits for a writer), and a larger file returns an
// error wrapping ErrTooLarge. It costs one open, one fstat, the reads and one
// close.
func readRegular(name string) ([]byte, error) {
	f, err := openNonBlocking(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errNotRegular}
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("credslots: %s is larger than %d bytes: %w", name, maxFileSize, ErrTooLarge)
	}
	// One byte more than the size fstat reported, to see growth past it.
	buf := make([]byte, fi.Size()+1)
	n, err := io.ReadFull(f, buf)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return buf[:n], nil
	case err != nil:
		return nil, err
	}
	// The file grew while it was read: read on, still bounded.
	rest, err := io.ReadAll(io.LimitReader(f, maxFileSize+1-int64(n)))
	if err != nil {
		return nil, err
	}
	data := append(buf[:n], rest...)
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("credslots: %s is larger than %d bytes: %w", name, maxFileSize, ErrTooLarge)
	}
	return data, nil
}

// errNotRegular is the error a read of a FIFO, socket, device or directory
// returns.
var errNotRegular = errors.New("not a regular file")
