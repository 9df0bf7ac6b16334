package credslots

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/gptme/credslots/internal/disk"
)

// DriftInfo is the result of [Manager.DetectLiveSlotDrift].
type DriftInfo struct {
	// Drift is true when the live content matches no slot, or the live
	// symlink is broken.
	Drift bool `json:"drift"`
	// MatchingSlot is the first configured sub whose slot has the live
	// content; "" when none.
	MatchingSlot string `json:"matching_slot"`
	// LiveHash is the sha256 hex of the live content; "" when the live
	// symlink is broken.
	LiveHash string `json:"live_hash"`
	// SlotHashes maps each sub whose slot exists and is readable to the
	// sha256 hex of its content.
	SlotHashes map[string]string `json:"slot_hashes"`
}

// DetectLiveSlotDrift compares the live credential's content (following the
// symlink) with every slot. It returns nil, nil when there is no live path at
// all, Drift true with an empty LiveHash when the live symlink is broken, and
// an error when the live path exists but cannot be read (a directory, no
// permission). It reads each file once, k+1 reads for k slots, and changes
// nothing.
func (m *Manager) DetectLiveSlotDrift() (*DriftInfo, error) {
	// Every file is read into one pooled buffer and hashed at once; nothing
	// of the bytes is kept. A file whose bytes were hashed before gets the
	// hash it had (see hashOf): the allocations then do not grow with the
	// number of slots but for the map's (see TestDetectLiveSlotDriftAllocs).
	buf := disk.GetBuffer()
	scratch := *buf
	read := func(path string) (string, error) {
		data, err := m.cfg.fs.ReadFileInto(path, scratch)
		h := ""
		if err == nil {
			h = m.hashOf(path, data)
		} else {
			clear(scratch[:cap(scratch)]) // a read that failed midway
		}
		clear(data)
		if cap(data) > cap(scratch) {
			scratch = data // a larger file: keep its buffer for the next
		}
		return h, err
	}
	defer func() {
		*buf = scratch[:0] // every read was cleared as it was hashed
		disk.PutBuffer(buf, *buf)
	}()
	liveHash, err := read(m.live)
	hasLive := err == nil
	switch {
	case hasLive:
	case isMissing(err):
		// Nothing there, or a symlink to nothing: only now tell them apart.
		if _, lerr := m.cfg.fs.Readlink(m.live); lerr != nil {
			if errors.Is(lerr, fs.ErrNotExist) {
				return nil, nil
			}
			if _, serr := m.cfg.fs.Lstat(m.live); errors.Is(serr, fs.ErrNotExist) {
				return nil, nil
			}
			return nil, fmt.Errorf("credslots: read live path %s: %w", m.live, err)
		}
	default:
		return nil, fmt.Errorf("credslots: read live path %s: %w", m.live, err)
	}
	info := &DriftInfo{LiveHash: liveHash, SlotHashes: make(map[string]string, len(m.subs))}
	for _, sub := range m.subs {
		h, err := read(m.slots[sub])
		if err != nil {
			continue
		}
		info.SlotHashes[sub] = h
		if hasLive && info.MatchingSlot == "" && h == liveHash {
			info.MatchingSlot = sub
		}
	}
	info.Drift = info.MatchingSlot == ""
	return info, nil
}

// liveDrift is [Manager.DetectLiveSlotDrift] that also returns what it read at the
// live path and in the slots, so that callers decide and act on the same
// bytes.
func (m *Manager) liveDrift() (*DriftInfo, entry, slotReads, error) {
	return m.liveDriftReading(m.readSlots)
}

// liveDriftReading is liveDrift with the slots read by readSlots, after the
// live path.
func (m *Manager) liveDriftReading(readSlots func() slotReads) (*DriftInfo, entry, slotReads, error) {
	live, err := inspect(m.cfg.fs, m.live)
	slots := readSlots()
	if err != nil {
		return nil, live, slots, fmt.Errorf("credslots: read live path %s: %w", m.live, err)
	}
	if live.Kind == kindMissing {
		return nil, live, slots, nil
	}
	return m.driftInfo(live.Hash, slots), live, slots, nil
}

// driftInfo compares a live content hash ("" for a broken symlink) with the
// slots.
func (m *Manager) driftInfo(liveHash string, slots slotReads) *DriftInfo {
	info := &DriftInfo{LiveHash: liveHash, SlotHashes: make(map[string]string, len(slots.data))}
	for _, sub := range m.subs {
		data, ok := slots.data[sub]
		if !ok {
			continue
		}
		h := hashBytes(data)
		info.SlotHashes[sub] = h
		if liveHash != "" && h == liveHash && info.MatchingSlot == "" {
			info.MatchingSlot = sub
		}
	}
	info.Drift = info.MatchingSlot == ""
	return info
}

// slotReads is one read of every configured slot: the content of each that
// could be read, and the error of each that could not.
type slotReads struct {
	data  map[string][]byte
	perms map[string]fs.FileMode
	errs  map[string]error
}

// readSlots reads every configured slot once.
func (m *Manager) readSlots() slotReads {
	r, _ := m.readSlotsAndSidecars(false)
	return r
}

// parallelReads is the number of reads each goroutine sharing a reading of
// the slots is given, at least; below it a goroutine costs more than the
// reads it overlaps. maxReaders is the most goroutines that share one.
const (
	parallelReads = 16
	maxReaders    = 4
)

// readSlotsAndSidecars reads every configured slot once, and with sidecars
// every sub's sidecar too. With enough slots and more than one processor,
// the reads are shared with up to maxReaders-1 more goroutines: one counter
// hands each read to whichever goroutine is free, each result has its own
// place, and the maps are filled on the caller's goroutine once all are
// done. A panic in a read is raised again on the caller's goroutine, as
// when it reads alone.
func (m *Manager) readSlotsAndSidecars(sidecars bool) (slotReads, []sidecarRead) {
	n := len(m.subs)
	data, perms, errs := make([][]byte, n), make([]fs.FileMode, n), make([]error, n)
	var sides []sidecarRead
	reads := n
	if sidecars {
		sides, reads = make([]sidecarRead, n), 2*n
	}
	read := func(k int) {
		if k < n {
			data[k], perms[k], errs[k] = m.cfg.fs.ReadFileMode(m.slots[m.subs[k]])
		} else {
			sides[k-n] = m.readSidecar(m.subs[k-n])
		}
	}
	var next atomic.Int64
	work := func() {
		for k := int(next.Add(1) - 1); k < reads; k = int(next.Add(1) - 1) {
			read(k)
		}
	}
	var wg sync.WaitGroup
	var panicked atomic.Pointer[any] // a reader's panic, raised again here
	for i := 1; i < min(runtime.GOMAXPROCS(0), maxReaders, reads/parallelReads); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					panicked.CompareAndSwap(nil, &p)
				}
			}()
			work()
		}()
	}
	work()
	wg.Wait()
	if p := panicked.Load(); p != nil {
		panic(*p)
	}
	r := slotReads{data: make(map[string][]byte, n), perms: make(map[string]fs.FileMode, n), errs: map[string]error{}}
	for i, sub := range m.subs {
		if errs[i] != nil {
			r.errs[sub] = errs[i]
			continue
		}
		r.data[sub], r.perms[sub] = data[i], perms[i]
	}
	return r, sides
}

// slotWithHash returns the first configured sub whose slot has content with
// the given hash, reading slots in order only until it finds one.
func (m *Manager) slotWithHash(hash string) (string, bool) {
	for _, sub := range m.subs {
		if data, err := m.cfg.fs.ReadFile(m.slots[sub]); err == nil && hashBytes(data) == hash {
			return sub, true
		}
	}
	return "", false
}
