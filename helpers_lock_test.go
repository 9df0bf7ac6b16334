package credslots

import (
	"github.com/gptme/credslots/internal/clilock"
	"github.com/gptme/credslots/internal/disk"
)

// The seam's calls the CLI locks make, counted and faulted like the others.

func (f *faultFS) StatLock(name string) (disk.LockStat, error) {
	if err := f.hit("statlock", name); err != nil {
		return disk.LockStat{}, err
	}
	return f.inner.StatLock(name)
}

func (f *faultFS) Rmdir(name string) error {
	if err := f.hit("rmdir", name); err != nil {
		return err
	}
	return f.inner.Rmdir(name)
}

func (f *faultFS) CreateNew(name string, data []byte) error {
	if err := f.hit("createnew", name); err != nil {
		return err
	}
	return f.inner.CreateNew(name, data)
}

// birthtimeMs is path's birth time as Claude Code's runtime reports it.
func birthtimeMs(path string) (float64, bool) {
	st, err := disk.StatLock(path)
	if err != nil {
		return 0, false
	}
	return st.BirthMs()
}

// ownerRecordPossible reports whether an owner record can be written for a
// refresh lock in dir: this process's identity and the birth time of a
// directory there are known.
func ownerRecordPossible(dir string) bool {
	if _, ok := clilock.Self(); !ok {
		return false
	}
	_, ok := birthtimeMs(dir)
	return ok
}
