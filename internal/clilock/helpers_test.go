package clilock

import (
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/gptme/credslots/internal/disk"
)

// countFS is the real file system, logging the calls the lock protocols
// make through the seam ("mkdir NAME", ...), by base name.
type countFS struct {
	disk.OS
	mu  sync.Mutex
	log []string
	// chtimesFails is how many Chtimes calls to come fail (EIO).
	chtimesFails int
	// statAfterChtimesFails makes the StatLock right after each of that
	// many Chtimes calls fail (EIO).
	statAfterChtimesFails int
	statFailNext          bool
}

func (c *countFS) note(op, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = append(c.log, op+" "+filepath.Base(name))
}

// ops returns the calls logged since the last call, and forgets them.
func (c *countFS) ops() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.log
	c.log = nil
	return out
}

func (c *countFS) Mkdir(name string, perm fs.FileMode) error {
	c.note("mkdir", name)
	return c.OS.Mkdir(name, perm)
}

func (c *countFS) StatLock(name string) (disk.LockStat, error) {
	c.note("statlock", name)
	c.mu.Lock()
	fail := c.statFailNext
	c.statFailNext = false
	c.mu.Unlock()
	if fail {
		return disk.LockStat{}, &fs.PathError{Op: "statlock", Path: name, Err: syscall.EIO}
	}
	return c.OS.StatLock(name)
}

func (c *countFS) Rmdir(name string) error {
	c.note("rmdir", name)
	return c.OS.Rmdir(name)
}

func (c *countFS) Chtimes(name string, a, m time.Time) error {
	c.note("chtimes", name)
	c.mu.Lock()
	fail := c.chtimesFails > 0
	if fail {
		c.chtimesFails--
	}
	c.mu.Unlock()
	if fail {
		return &fs.PathError{Op: "chtimes", Path: name, Err: syscall.EIO}
	}
	c.mu.Lock()
	if c.statAfterChtimesFails > 0 {
		c.statAfterChtimesFails--
		c.statFailNext = true
	}
	c.mu.Unlock()
	return c.OS.Chtimes(name, a, m)
}

func (c *countFS) CreateNew(name string, data []byte) error {
	c.note("createnew", name)
	return c.OS.CreateNew(name, data)
}

func (c *countFS) Remove(name string) error {
	c.note("remove", name)
	return c.OS.Remove(name)
}

func (c *countFS) ReadFile(name string) ([]byte, error) {
	c.note("read", name)
	return c.OS.ReadFile(name)
}

func (c *countFS) Lstat(name string) (fs.FileInfo, error) {
	c.note("lstat", name)
	return c.OS.Lstat(name)
}

func (c *countFS) ReadFileInto(name string, buf []byte) ([]byte, error) {
	c.note("read", name)
	return c.OS.ReadFileInto(name, buf)
}
