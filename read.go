package credslots

import (
	"errors"
	"fmt"
)

// maxFileSize bounds every file the package reads: credentials, sidecars,
// the journal, backups and busy-signal files.
const maxFileSize = 1 << 20

// errNotRegular is the error a read of a FIFO, socket, device or directory
// returns.
var errNotRegular = errors.New("not a regular file")

// tooLarge is the error for a file over limit bytes.
func tooLarge(name string, limit int64) error {
	return fmt.Errorf("credslots: %s is larger than %d bytes: %w", name, limit, ErrTooLarge)
}
