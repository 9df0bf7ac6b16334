//go:build !unix

package disk

import (
	"errors"
	"os"
)

// inodeOf is not known here.
func inodeOf(os.FileInfo) (uint64, bool) { return 0, false }

// CreateNew creates name exclusively, mode 0600, writes data and closes
// it; a name that exists fails with an error wrapping fs.ErrExist.
func CreateNew(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|ONoFollow, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Close()); err != nil {
		_ = os.Remove(name)
		return err
	}
	return nil
}

// Rmdir removes the empty directory name.
func Rmdir(name string) error { return os.Remove(name) }
