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

// OpenRecord counts as AppendRecord does ("append", and "fsync" when
// durable); each record through the kept file counts the same.
func (f *faultFS) OpenRecord(name string, data []byte, durable, create bool) (int64, disk.RecordFile, error) {
	if err := f.hit("append", name); err != nil {
		return 0, nil, err
	}
	if durable {
		if err := f.hit("fsync", name); err != nil {
			return 0, nil, err
		}
	}
	size, rf, err := f.inner.OpenRecord(name, data, durable, create)
	if err != nil {
		return size, nil, err
	}
	return size, &faultRecord{f: f, name: name, inner: rf}, nil
}

// faultRecord is a record file kept open, through faultFS.
type faultRecord struct {
	f     *faultFS
	name  string
	inner disk.RecordFile
}

func (r *faultRecord) Append(data []byte, durable bool) error {
	if err := r.f.hit("append", r.name); err != nil {
		return err
	}
	if durable {
		if err := r.f.hit("fsync", r.name); err != nil {
			return err
		}
	}
	return r.inner.Append(data, durable)
}

func (r *faultRecord) Close() error { return r.inner.Close() }

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
