package swap

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gptme/credslots/internal/disk"
)

// ErrChanged is wrapped by the error for a path that changed since the
// caller checked it.
var ErrChanged = errors.New("live path changed concurrently")

// TempLinkMarker is part of the name of every temporary symlink Symlink
// makes: "." + the destination's base name + TempLinkMarker + a suffix
// ("0", else a random one: see CreateTempSymlink).
const TempLinkMarker = ".credslots.tmp-link."

// Kind is what a path held when it was inspected.
type Kind int

// The kinds of Entry.
const (
	KindMissing Kind = iota
	KindSymlink
	KindBrokenSymlink
	KindFile
	KindOther
)

func (k Kind) String() string {
	switch k {
	case KindMissing:
		return "missing"
	case KindSymlink:
		return "symlink"
	case KindBrokenSymlink:
		return "broken-symlink"
	case KindFile:
		return "file"
	default:
		return "other"
	}
}

// Entry describes what a path held when it was inspected.
type Entry struct {
	Kind   Kind
	Perm   fs.FileMode // of a regular file
	Mtime  time.Time   // of a regular file (zero for the other kinds)
	Target string      // a symlink's target, as written
	Data   []byte      // content, for KindFile (and the target's content for KindSymlink)
	Hash   string      // sha256 of Data; "" when there is no readable content
}

// Hash returns the lowercase sha256 hex of b.
func Hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Inspect reads path once (following a symlink) and classifies it: a read,
// a readlink, and for anything but a symlink an lstat. A read error other
// than "does not exist" is returned as is.
func Inspect(fsys disk.FS, path string) (Entry, error) {
	data, rerr := fsys.ReadFile(path)
	link, err := fsys.Readlink(path)
	switch {
	case err == nil:
		e := Entry{Kind: KindSymlink, Target: link}
		switch {
		case rerr == nil:
			e.Data, e.Hash = data, Hash(data)
		case IsMissing(rerr) || HoldsNoFile(rerr):
			// A symlink holds no data: one whose target is missing, a
			// directory, or unreadable (not a regular file, too large,
			// not permitted) is a broken symlink, which a change may
			// replace.
			e.Kind = KindBrokenSymlink
		default:
			return e, rerr
		}
		return e, nil
	case errors.Is(err, fs.ErrNotExist):
		return Entry{Kind: KindMissing}, nil
	}
	fi, lerr := fsys.Lstat(path)
	if lerr != nil {
		if errors.Is(lerr, fs.ErrNotExist) {
			return Entry{Kind: KindMissing}, nil
		}
		return Entry{}, lerr
	}
	e, err := classify(fi, data, rerr, path)
	e.Mtime, e.Perm = fi.ModTime(), fi.Mode().Perm()
	return e, err
}

// classify builds the entry of a path that is not a symlink from what Lstat
// and ReadFile reported.
func classify(fi fs.FileInfo, data []byte, rerr error, path string) (Entry, error) {
	switch {
	case fi.Mode().IsRegular():
		if rerr != nil {
			return Entry{Kind: KindFile}, rerr
		}
		return Entry{Kind: KindFile, Data: data, Hash: Hash(data)}, nil
	case fi.Mode()&fs.ModeSymlink != 0:
		// It became a symlink between the readlink and the lstat.
		return Entry{Kind: KindOther}, fmt.Errorf("credslots: %s changed while it was read: %w", path, ErrChanged)
	default:
		if rerr == nil {
			rerr = fmt.Errorf("credslots: %s is not a regular file or symlink", path)
		}
		return Entry{Kind: KindOther}, rerr
	}
}

// HoldsNoFile reports a read error that says the path leads to nothing
// readable as a credential: a directory, FIFO or device, a file over the
// reader's bound, or one the process may not read.
func HoldsNoFile(err error) bool {
	return errors.Is(err, disk.ErrNotRegular) || errors.Is(err, disk.ErrTooLarge) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EISDIR)
}

// IsMissing reports whether err means that nothing usable is at a path: it
// does not exist, a symlink on the way loops (ELOOP), or a component on the
// way is not a directory (ENOTDIR).
func IsMissing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR)
}

// CreateTempSymlink creates a symlink to target under a fresh temporary
// name beside dest and returns that name. The first name tried is the same
// every time (suffix "0"): a switch removes its temporary when done, so the
// next one finds the name free, and the kernel has the lookup of a name it
// just saw removed cached, where a new random name is looked for in the
// directory itself (on ext4 about 6 µs of a switch). The symlink is made
// exclusively, so a name taken (a leftover of a killed change, another
// process's change in progress) is never touched: the next tries are
// random.
func CreateTempSymlink(fsys disk.FS, dest, target string) (string, error) {
	prefix := tempLinkPrefix(dest)
	for i := 0; ; i++ {
		name := prefix + "0"
		if i > 0 {
			name = prefix + strconv.FormatUint(rand.Uint64(), 36)
		}
		err := fsys.Symlink(target, name)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) || i >= 100 {
			return "", fmt.Errorf("credslots: create temp symlink for %s: %w", dest, err)
		}
	}
}

// tempLinkPrefix is the start of a temporary symlink's name beside dest:
// dest's directory, a dot, dest's base and the marker. Where the separator
// is a slash it is cut from dest as spelled, without cleaning it again.
func tempLinkPrefix(dest string) string {
	if filepath.Separator == '/' {
		i := strings.LastIndexByte(dest, '/') + 1
		return dest[:i] + "." + dest[i:] + TempLinkMarker
	}
	return filepath.Join(filepath.Dir(dest), "."+filepath.Base(dest)+TempLinkMarker)
}
