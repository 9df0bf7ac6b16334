//go:build unix

package credslots

import (
	"os"
	"syscall"
)

// openNonBlocking opens name for reading with O_NONBLOCK, so that opening a
// FIFO never waits for a writer.
func openNonBlocking(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
}
