//go:build !unix

package credslots

import "os"

// openNonBlocking opens name for reading; this platform has no FIFOs that
// block an open.
func openNonBlocking(name string) (*os.File, error) { return os.Open(name) }
