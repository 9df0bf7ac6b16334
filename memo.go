package credslots

import (
	"sync"

	"github.com/gptme/credslots/internal/credfile"
	"github.com/gptme/credslots/internal/readmemo"
)

// fileMemo is what the Manager remembers of one of its files (a slot, a
// sidecar, the live path) from the last reads of it: per answer, the key
// of the bytes it was computed from (see internal/readmemo). The checks
// read again and again files that rarely change: a read that finds the
// same bytes skips their parse, or their hash, and answers as that read
// did. A file's bytes are read every time, and nothing of them is kept.
type fileMemo struct {
	expiry, identity, login readmemo.Cell[credential]
	sidecar                 readmemo.Cell[string]
	hash                    readmemo.Cell[string]
}

// memos holds a fileMemo per file of the Manager, made on first use.
type memos struct {
	once   sync.Once
	byPath map[string]*fileMemo
}

// memoOf returns the memo of the file at path; nil for a path that is not
// one of the Manager's slots, sidecars or live path.
func (m *Manager) memoOf(path string) *fileMemo {
	m.memo.once.Do(func() {
		all := make([]fileMemo, 2*len(m.subs)+1)
		byPath := make(map[string]*fileMemo, len(all))
		byPath[m.live] = &all[0]
		for i, sub := range m.subs {
			byPath[m.slots[sub]], byPath[m.prints[sub]] = &all[1+2*i], &all[2+2*i]
		}
		m.memo.byPath = byPath
	})
	return m.memo.byPath[path]
}

// parsed is the format's parse of data, the bytes just read from path,
// for want: remembered per file for the three answers the checks ask
// for again and again.
func (m *Manager) parsed(path string, data []byte, want credfile.Want) credential {
	var cell *readmemo.Cell[credential]
	if fm := m.memoOf(path); fm != nil {
		switch want {
		case credfile.Expiry:
			cell = &fm.expiry
		case credfile.Identity:
			cell = &fm.identity
		case credfile.Login:
			cell = &fm.login
		}
	}
	return remember(cell, data, func(data []byte) credential { return m.cfg.format.parseFor(data, want) })
}

// sidecarPrint is the fingerprint the sidecar bytes data, just read from
// path, record ("" for none), remembered per file.
func (m *Manager) sidecarPrint(path string, data []byte) string {
	var cell *readmemo.Cell[string]
	if fm := m.memoOf(path); fm != nil {
		cell = &fm.sidecar
	}
	return remember(cell, data, func(data []byte) string { fp, _ := credfile.Sidecar(data); return fp })
}

// hashOf is the content hash of data (sha256, hex: see hashBytes), the
// bytes just read from path, remembered per file.
func (m *Manager) hashOf(path string, data []byte) string {
	var cell *readmemo.Cell[string]
	if fm := m.memoOf(path); fm != nil {
		cell = &fm.hash
	}
	return remember(cell, data, hashBytes)
}

// remember is compute(data): the answer cell holds when data are the bytes
// it was computed from, else computed and kept there. A nil cell (a file
// that is none of the Manager's) keeps nothing.
func remember[V any](cell *readmemo.Cell[V], data []byte, compute func([]byte) V) V {
	if cell == nil {
		return compute(data)
	}
	k := readmemo.KeyOf(data)
	if v, ok := cell.Get(k); ok {
		return v
	}
	v := compute(data)
	cell.Put(k, v)
	return v
}
