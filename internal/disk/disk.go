package disk

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gptme/credslots/internal/atomicfile"
)

// MaxFileSize bounds every file credslots reads: credentials, sidecars, the
// journal, backups and busy-signal files.
const MaxFileSize = 1 << 20

var (
	// ErrTooLarge is wrapped by the error for a file over a reader's bound.
	ErrTooLarge = errors.New("file too large")
	// ErrNotRegular is the error a read of a FIFO, socket, device or
	// directory returns.
	ErrNotRegular = errors.New("not a regular file")
	// ErrExchangeUnsupported is returned by Exchange and RenameNoReplace
	// where the platform has no such rename; callers fall back to
	// check-then-rename.
	ErrExchangeUnsupported = errors.New("atomic exchange not supported")
	// ErrLinkTooLong is ReadlinkInto's error for a target that fills the
	// buffer given.
	ErrLinkTooLong = errors.New("symlink target longer than the buffer")
)

// FS is the seam between credslots and the disk: every file-system call
// the package makes goes through one value of it, which tests replace to
// inject a fault at any single step. OS is the real one. Its methods may be
// called from several goroutines at once: a reading of many slots shares
// its reads among a few.
type FS interface {
	ReadFile(name string) ([]byte, error)
	// ReadFileMode is ReadFile that also returns the file's permission bits.
	ReadFileMode(name string) ([]byte, fs.FileMode, error)
	// ReadFileTail reads at most the last limit bytes of a regular file.
	ReadFileTail(name string, limit int64) ([]byte, error)
	// ReadFileInto is ReadFile into buf when the file fits in its
	// capacity (see ReadRegularInto): for a caller that keeps nothing of
	// the bytes, with a buffer from GetBuffer.
	ReadFileInto(name string, buf []byte) ([]byte, error)
	Lstat(name string) (fs.FileInfo, error)
	Stat(name string) (fs.FileInfo, error)
	// StatMode is Stat's mode alone, without building a FileInfo.
	StatMode(name string) (fs.FileMode, error)
	Readlink(name string) (string, error)
	// ReadlinkInto is Readlink into buf: the target's length, or
	// ErrLinkTooLong when it fills buf (it may have been cut).
	ReadlinkInto(name string, buf []byte) (int, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	// CreateTemp creates a new file exclusively with mode 0600.
	CreateTemp(dir, pattern string) (atomicfile.File, error)
	Symlink(target, name string) error
	Rename(from, to string) error
	// Exchange atomically swaps two existing names; ErrExchangeUnsupported
	// where the platform cannot.
	Exchange(a, b string) error
	// RenameNoReplace renames from to to, failing with fs.ErrExist if to
	// exists; ErrExchangeUnsupported where the platform cannot.
	RenameNoReplace(from, to string) error
	Remove(name string) error
	// RemoveAll is used only on the package's own temporary directories.
	RemoveAll(name string) error
	Mkdir(name string, perm fs.FileMode) error
	SyncDir(dir string) error
	// TryLock takes an exclusive advisory lock on name without waiting.
	// It reports false (and no error) when another holder has it.
	TryLock(name string) (unlock func() error, ok bool, err error)
	// LockOpen is TryLock returning the locked file itself, which a child
	// process may inherit (a lease's lock); with create false, a missing
	// file is an error wrapping fs.ErrNotExist.
	LockOpen(name string, create bool) (*os.File, bool, error)
	// Chtimes sets a file's access and modification times.
	Chtimes(name string, atime, mtime time.Time) error
	// Chmod sets a file's permission bits, never through a symlink.
	Chmod(name string, mode fs.FileMode) error
	// Append appends data to name with one write, creating it with mode
	// 0600 (never following a symlink), and fsyncs it when durable. When
	// the file does not end with a newline (a line torn by a crash), data
	// starts on a new line.
	Append(name string, data []byte, durable bool) error
	// AppendRecord is Append for a record file such as the journal: it
	// refuses anything but a regular file (ErrNotRegular), creates name
	// only when create (else a missing file is fs.ErrNotExist), and
	// returns the file's size before the write, from the fstat of the
	// descriptor it wrote through.
	AppendRecord(name string, data []byte, durable, create bool) (int64, error)
	// OpenRecord is AppendRecord that keeps the file open: the records
	// that follow are appended through the RecordFile with one write each
	// (no open, fstat or look at the last byte), as long as nobody else
	// appends to the file or replaces it meanwhile. The caller closes it.
	OpenRecord(name string, data []byte, durable, create bool) (int64, RecordFile, error)
	// EvalSymlinks returns name with every symlink resolved.
	EvalSymlinks(name string) (string, error)
	// Lchown sets the owner and group of name, not following a symlink.
	Lchown(name string, uid, gid int) error
	// StatLock is one stat of name, not following a symlink, with the
	// inode and birth time the CLI lock protocols compare.
	StatLock(name string) (LockStat, error)
	// Rmdir removes an empty directory with one call.
	Rmdir(name string) error
	// CreateNew creates name exclusively (0600, never through a symlink)
	// holding data, with one write; fs.ErrExist when name exists.
	CreateNew(name string, data []byte) error
}

// OS is the real file system.
type OS struct{}

func (OS) ReadFile(name string) ([]byte, error) { return ReadRegular(name) }
func (OS) ReadFileMode(name string) ([]byte, fs.FileMode, error) {
	return ReadRegularMode(name, MaxFileSize)
}
func (OS) ReadFileTail(name string, limit int64) ([]byte, error) {
	return ReadRegularTail(name, limit)
}
func (OS) ReadFileInto(name string, buf []byte) ([]byte, error) {
	return ReadRegularInto(name, buf, MaxFileSize)
}
func (OS) StatMode(name string) (fs.FileMode, error)         { return StatMode(name) }
func (OS) ReadlinkInto(name string, buf []byte) (int, error) { return ReadlinkInto(name, buf) }
func (OS) Lstat(name string) (fs.FileInfo, error)            { return os.Lstat(name) }
func (OS) Stat(name string) (fs.FileInfo, error)             { return os.Stat(name) }
func (OS) Readlink(name string) (string, error)              { return os.Readlink(name) }
func (OS) ReadDir(name string) ([]fs.DirEntry, error)        { return os.ReadDir(name) }
func (OS) Symlink(target, name string) error                 { return os.Symlink(target, name) }
func (OS) Rename(from, to string) error                      { return os.Rename(from, to) }
func (OS) Remove(name string) error                          { return os.Remove(name) }
func (OS) RemoveAll(name string) error                       { return os.RemoveAll(name) }
func (OS) Mkdir(name string, perm fs.FileMode) error         { return os.Mkdir(name, perm) }
func (OS) Exchange(a, b string) error                        { return Exchange(a, b) }
func (OS) RenameNoReplace(from, to string) error             { return RenameNoReplace(from, to) }
func (OS) SyncDir(dir string) error                          { return atomicfile.SyncDir(dir) }
func (OS) TryLock(name string) (func() error, bool, error) {
	return TryLock(name)
}
func (OS) LockOpen(name string, create bool) (*os.File, bool, error) { return LockOpen(name, create) }
func (OS) Chtimes(name string, atime, mtime time.Time) error         { return os.Chtimes(name, atime, mtime) }
func (OS) Chmod(name string, mode fs.FileMode) error                 { return ChmodNoFollow(name, mode) }
func (OS) EvalSymlinks(name string) (string, error)                  { return filepath.EvalSymlinks(name) }
func (OS) Lchown(name string, uid, gid int) error                    { return os.Lchown(name, uid, gid) }
func (OS) StatLock(name string) (LockStat, error)                    { return StatLock(name) }
func (OS) Rmdir(name string) error                                   { return Rmdir(name) }
func (OS) CreateNew(name string, data []byte) error                  { return CreateNew(name, data) }

func (OS) AppendRecord(name string, data []byte, durable, create bool) (int64, error) {
	return AppendRecord(name, data, durable, create)
}

func (OS) OpenRecord(name string, data []byte, durable, create bool) (int64, RecordFile, error) {
	return OpenRecord(name, data, durable, create)
}

// RecordFile is a record file kept open by OpenRecord.
type RecordFile interface {
	// Append writes data with one write, fsynced when durable.
	Append(data []byte, durable bool) error
	Close() error
}

func (OS) Append(name string, data []byte, durable bool) error {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_APPEND|os.O_CREATE|ONoFollow, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return err
	}
	if fi.Mode().Perm() != 0o600 {
		_ = f.Chmod(0o600) // created under a umask that took bits away
	}
	if fi.Size() > 0 {
		// A line torn by a crash must not swallow the next one.
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			data = append([]byte{'\n'}, data...)
		}
	}
	_, werr := f.Write(data)
	var serr error
	if durable {
		serr = f.Sync()
	}
	cerr := f.Close()
	return errors.Join(werr, serr, cerr)
}

func (OS) CreateTemp(dir, pattern string) (atomicfile.File, error) {
	// os.CreateTemp opens with O_RDWR|O_CREATE|O_EXCL and mode 0600.
	return os.CreateTemp(dir, pattern)
}
