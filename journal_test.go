package credslots

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// plainManager is a second manager over an existing creds dir, on the real
// file system, without the CLIs' locks: another process acting on the dir.
func plainManager(t testing.TB, dir string, opts ...Option) *Manager {
	t.Helper()
	base := []Option{WithCredsDir(dir), WithSubscriptions("bob", "alice", "erik"), WithClock(fixedClock), WithCLILocks(false)}
	m, err := New(append(base, opts...)...)
	require.NoError(t, err)
	return m
}

// journalOf returns the manager's journal, failing the test on an error.
func journalOf(t testing.TB, m *Manager) []JournalEntry {
	t.Helper()
	entries, err := m.Journal()
	require.NoError(t, err)
	return entries
}

// journalBytes returns the raw journal, nil when there is none.
func journalBytes(t testing.TB, m *Manager) []byte {
	t.Helper()
	data, err := os.ReadFile(m.journalPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	return data
}

// appendJournal appends records to the journal by hand, as another process
// (or a killed one) left them.
func appendJournal(t testing.TB, m *Manager, entries ...JournalEntry) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(m.journalPath()), 0o700))
	fh, err := os.OpenFile(m.journalPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer fh.Close()
	for _, e := range entries {
		line, err := encodeJournalLine(e)
		require.NoError(t, err)
		_, err = fh.Write(line)
		require.NoError(t, err)
	}
}

// ofOp keeps the entries of one op.
func ofOp(entries []JournalEntry, op string) []JournalEntry {
	var out []JournalEntry
	for _, e := range entries {
		if e.Op == op {
			out = append(out, e)
		}
	}
	return out
}

// liveMtime is the live path's own modification time.
func liveMtime(t testing.TB, f *fixture) time.Time {
	t.Helper()
	fi, err := os.Lstat(f.m.LivePath())
	require.NoError(t, err)
	return fi.ModTime()
}

// refreshAt simulates a CLI refresh whose file carries mtime at.
func (f *fixture) refreshAt(t testing.TB, doc []byte, at time.Time) {
	t.Helper()
	f.refresh(t, doc)
	require.NoError(t, os.Chtimes(f.m.LivePath(), at, at))
}

func TestJournalSwitchRecordsIntentAndDone(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "alice")

	_, err := f.m.SwitchTo("bob", "alice quota exhausted")
	require.NoError(t, err)

	entries := journalOf(t, f.m)
	require.Len(t, entries, 2, "%+v", entries)
	intent, done := entries[0], entries[1]
	assert.Equal(t, "switch", intent.Op)
	assert.Equal(t, "intent", intent.Phase)
	assert.Equal(t, "switch", done.Op)
	assert.Equal(t, "done", done.Phase)
	assert.NotEmpty(t, intent.ID)
	assert.Equal(t, intent.ID, done.ID)
	for _, e := range entries {
		assert.Equal(t, "bob", e.Sub)
		assert.Equal(t, "alice", e.From)
		assert.Equal(t, "alice quota exhausted", e.Reason)
		assert.Empty(t, e.Error)
		assert.False(t, e.Migrated)
		assert.Equal(t, time.UTC, e.Time.Location())
		assert.True(t, e.Time.Equal(testNow), "the manager's clock: %s", e.Time)
	}
	assert.Nil(t, intent.LiveMtime)
	require.NotNil(t, done.LiveMtime)
	assert.True(t, done.LiveMtime.Equal(liveMtime(t, f)), "done %s, symlink %s", done.LiveMtime, liveMtime(t, f))

	sub, ok := f.m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "bob", sub)
}

func TestJournalHealRecord(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	f.link(t, "bob")
	f.refresh(t, claudeDoc(fresh, "rt-bob-2"))

	_, err := f.m.HealDriftTo("bob")
	require.NoError(t, err)
	entries := journalOf(t, f.m)
	require.Len(t, entries, 2, "%+v", entries)
	assert.Equal(t, []string{"heal/intent", "heal/done"}, []string{entries[0].Op + "/" + entries[0].Phase, entries[1].Op + "/" + entries[1].Phase})
	assert.Equal(t, entries[0].ID, entries[1].ID)
	assert.NotEmpty(t, entries[0].ID)
	assert.Equal(t, "bob", entries[1].Sub)
	assert.Equal(t, healHookReason, entries[1].Reason)
	require.NotNil(t, entries[1].LiveMtime)
	assert.True(t, entries[1].LiveMtime.Equal(liveMtime(t, f)))
}

func TestJournalRefusedSwitchWritesNothing(t *testing.T) {
	tests := []struct {
		name     string
		opts     []Option
		setup    func(t *testing.T, f *fixture)
		force    bool
		sentinel error
	}{
		{"not fresh", nil, func(t *testing.T, f *fixture) {
			writeSlot(t, f.slot("bob"), stale, "rt-bob")
		}, true, ErrNotFresh},
		{"deferred", []Option{WithLockGuard(func() []string { return []string{"agent-1"} })}, nil, false, ErrDeferred},
		{"identity drift", nil, func(t *testing.T, f *fixture) {
			_, err := f.m.CaptureSlotFingerprint("bob")
			require.NoError(t, err)
			writeSlot(t, f.slot("bob"), fresh, "rt-someone-else")
		}, false, ErrIdentityDrift},
		{"live drifted", nil, func(t *testing.T, f *fixture) {
			f.refresh(t, claudeDoc(fresh, "rt-live-only"))
		}, false, ErrLiveDrifted},
		{"slot missing", nil, func(t *testing.T, f *fixture) {
			require.NoError(t, os.Remove(f.slot("bob")))
		}, true, ErrSlotMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts...)
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			writeSlot(t, f.slot("alice"), fresh, "rt-alice")
			// A completed switch first, so that the journal exists.
			_, err := plainManager(t, f.dir).SwitchTo("alice", "start")
			require.NoError(t, err)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			before := journalBytes(t, f.m)
			require.NotEmpty(t, before)

			var opts []SwitchOption
			if tt.force {
				opts = append(opts, Force())
			}
			_, err = f.m.SwitchTo("bob", "rotate", opts...)
			require.ErrorIs(t, err, tt.sentinel)
			assert.Equal(t, string(before), string(journalBytes(t, f.m)), "a refusal writes no record")
			sub, ok := f.m.LastActive()
			assert.True(t, ok)
			assert.Equal(t, "alice", sub)
		})
	}
}

func TestJournalFailedChangeWritesFailed(t *testing.T) {
	ffs := &faultFS{inner: disk.OS{}, failAt: 1, ops: map[string]bool{"exchange": true}}
	f := newFixture(t, withFS(ffs))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "alice")

	_, err := f.m.SwitchTo("bob", "rotate")
	require.ErrorIs(t, err, errInjected)
	assert.Equal(t, ".credentials.json.alice", f.readlink(t))

	entries := journalOf(t, f.m)
	require.Len(t, entries, 2, "%+v", entries)
	assert.Equal(t, "intent", entries[0].Phase)
	assert.Equal(t, "failed", entries[1].Phase)
	assert.Equal(t, "switch", entries[1].Op)
	assert.Equal(t, entries[0].ID, entries[1].ID)
	assert.Equal(t, "bob", entries[1].Sub)
	assert.Contains(t, entries[1].Error, "injected fault")
	assert.Nil(t, entries[1].LiveMtime)
	_, ok := f.m.LastActive()
	assert.False(t, ok, "a failed switch is no completed change")
}

func TestJournalCaptureRecord(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	fp, err := f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	require.NotEmpty(t, fp)

	entries := journalOf(t, f.m)
	require.Len(t, entries, 1, "%+v", entries)
	assert.Equal(t, "capture", entries[0].Op)
	assert.Equal(t, "done", entries[0].Phase)
	assert.Equal(t, "bob", entries[0].Sub)
	assert.True(t, entries[0].Time.Equal(testNow))
	_, ok := f.m.LastActive()
	assert.False(t, ok, "a capture is no switch")

	// Nothing to capture: no record.
	_, err = f.m.CaptureSlotFingerprint("erik")
	require.NoError(t, err)
	assert.Len(t, journalOf(t, f.m), 1)
}

func TestJournalFileModes(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	_, err := f.m.SwitchTo("bob", "r")
	require.NoError(t, err)

	fi, err := os.Lstat(filepath.Join(f.dir, ".credslots"))
	require.NoError(t, err)
	assert.True(t, fi.IsDir())
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	assert.Equal(t, filepath.Join(f.dir, ".credslots", "journal.jsonl"), f.m.journalPath())
	fi, err = os.Lstat(f.m.journalPath())
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular())
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

func TestJournalHoldsNoTokenMaterial(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-secret-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-secret-alice")
	f.link(t, "alice")
	_, err := f.m.SwitchTo("bob", "rotate")
	require.NoError(t, err)
	// A heal of a refreshed token.
	f.refreshAt(t, claudeDoc(fresh, "rt-secret-bob-2"), time.Now().Add(time.Hour))
	_, err = f.m.HealDrift()
	require.NoError(t, err)
	// A forced switch away from a drifted file.
	f.refresh(t, claudeDoc(fresh, "rt-secret-drifted"))
	_, err = f.m.SwitchTo("alice", "operator", Force())
	require.NoError(t, err)
	_, err = f.m.CaptureSlotFingerprint("alice")
	require.NoError(t, err)
	require.NoError(t, f.m.Restore(".credentials.json.bob.prev", "bob"))
	// A refused heal of a malformed file and a failed switch.
	f.refresh(t, []byte(`{"claudeAiOauth":{"refreshToken":"rt-secret-malformed","expiresAt":"x"}}`))
	_, err = f.m.HealDriftTo("bob")
	require.ErrorIs(t, err, ErrUnhealable)

	data := journalBytes(t, f.m)
	require.NotEmpty(t, data)
	for _, secret := range []string{"rt-secret", "sk-ant-oat01", "access-"} {
		assert.NotContains(t, string(data), secret)
	}
	for _, e := range journalOf(t, f.m) {
		assert.NotContains(t, e.Reason+e.Error, "secret")
	}
}

// advancingClock returns a clock that moves one second per call.
func advancingClock() func() time.Time {
	var mu sync.Mutex
	now := testNow
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}
}

func TestJournalReturnsEntriesOldestFirst(t *testing.T) {
	f := newFixture(t, WithClock(advancingClock()))
	for _, sub := range []string{"bob", "alice", "erik"} {
		writeSlot(t, f.slot(sub), fresh, "rt-"+sub)
	}
	for _, sub := range []string{"bob", "alice", "erik", "bob"} {
		_, err := f.m.SwitchTo(sub, "to "+sub)
		require.NoError(t, err)
	}
	entries := journalOf(t, f.m)
	var order []string
	for i, e := range entries {
		if i > 0 {
			assert.True(t, e.Time.After(entries[i-1].Time), "entry %d (%s) after entry %d (%s)", i, e.Time, i-1, entries[i-1].Time)
		}
		if e.Phase == phaseDone {
			order = append(order, e.Sub)
		}
	}
	assert.Equal(t, []string{"bob", "alice", "erik", "bob"}, order)
	froms := []string{}
	for _, e := range ofOp(entries, opSwitch) {
		if e.Phase == phaseIntent {
			froms = append(froms, e.From)
		}
	}
	assert.Equal(t, []string{"", "bob", "alice", "erik"}, froms, "each switch names the sub it replaced")
}

// paddedLine is a valid done record of exactly n bytes (without newline).
func paddedLine(t testing.TB, sub string, n int) []byte {
	t.Helper()
	e := JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseDone, ID: "pad-" + sub, Sub: sub}
	line, err := json.Marshal(e)
	require.NoError(t, err)
	e.Reason = strings.Repeat("r", n-len(line)-len(`,"reason":""`))
	line, err = json.Marshal(e)
	require.NoError(t, err)
	require.Len(t, line, n)
	return line
}

func TestJournalSkipsMalformedLines(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	good1 := JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: "1", Sub: "alice"}
	good2 := JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseDone, ID: "1", Sub: "alice"}
	l1, err := encodeJournalLine(good1)
	require.NoError(t, err)
	l2, err := encodeJournalLine(good2)
	require.NoError(t, err)
	var buf bytes.Buffer
	buf.Write(l1)
	buf.WriteString("not json at all\n")
	buf.WriteString(`{"op":"switch","phase":"done"}` + "\n") // no sub
	buf.WriteString(`{"op":"switch","sub":"bob"}` + "\n")    // no phase
	buf.WriteString(`{"phase":"done","sub":"bob"}` + "\n")   // no op
	buf.WriteString(`["array"]` + "\n")
	buf.WriteString(`{"op":"switch","phase":"done","sub":"bob","time":"yesterday"}` + "\n")
	buf.Write(paddedLine(t, "bob", journalMaxLine+1)) // over-long: a done switch to bob, skipped
	buf.WriteString("\n\n")
	buf.Write(l2)
	buf.WriteString(`{"op":"switch","phase":"do` + "\n") // torn line
	writeFile(t, f.m.journalPath(), buf.Bytes())

	entries := journalOf(t, f.m)
	require.Len(t, entries, 2, "%+v", entries)
	assert.Equal(t, "intent", entries[0].Phase)
	assert.Equal(t, "done", entries[1].Phase)
	logs := f.logs.String()
	assert.Contains(t, logs, "level=WARN")
	assert.Contains(t, logs, "malformed journal line")
	assert.Equal(t, 8, strings.Count(logs, "malformed journal line"), logs)

	sub, ok := f.m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "alice", sub, "the over-long done record to bob was skipped")

	// A change still works, and its records follow.
	_, err = f.m.SwitchTo("bob", "r")
	require.NoError(t, err)
	sub, _ = f.m.LastActive()
	assert.Equal(t, "bob", sub)
}

// TestJournalTornLastLine starts from a journal whose last line was cut
// short (a crash or a full disk during an append, no newline): the next
// change's records must still be read, and LastActive must name the sub of
// the switch that just completed, never an older one.
func TestJournalTornLastLine(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err := f.m.SwitchTo("alice", "start")
	require.NoError(t, err)
	fh, err := os.OpenFile(f.m.journalPath(), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = fh.WriteString(`{"time":"2026-01-01T12:00:00Z","op":"capture","phase":"do`)
	require.NoError(t, err)
	require.NoError(t, fh.Close())

	_, err = f.m.SwitchTo("bob", "rotate")
	require.NoError(t, err)
	require.Equal(t, ".credentials.json.bob", f.readlink(t))

	var phases []string
	for _, e := range journalOf(t, f.m) {
		phases = append(phases, e.Op+"/"+e.Sub+"/"+e.Phase)
	}
	assert.Equal(t, []string{"switch/alice/intent", "switch/alice/done", "switch/bob/intent", "switch/bob/done"}, phases,
		"the torn line is skipped, the next record is not")
	sub, ok := f.m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "bob", sub, "the switch to bob completed last")

	// The consequence: a refresh of bob's token must never be healed into alice's slot.
	aliceSlot, err := os.ReadFile(f.slot("alice"))
	require.NoError(t, err)
	f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"), time.Now().Add(time.Hour))
	_, _ = f.m.HealDrift()
	got, err := os.ReadFile(f.slot("alice"))
	require.NoError(t, err)
	assert.Equal(t, string(aliceSlot), string(got), "bob's refreshed token was healed into alice's slot")
}

func TestJournalLineLengthBoundary(t *testing.T) {
	e, ok := parseJournalLine(paddedLine(t, "bob", journalMaxLine))
	assert.True(t, ok, "a line of exactly %d bytes is accepted", journalMaxLine)
	assert.Equal(t, "bob", e.Sub)
	_, ok = parseJournalLine(paddedLine(t, "bob", journalMaxLine+1))
	assert.False(t, ok, "a longer line is refused")
}

func TestJournalLongReasonIsShortened(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	reason := strings.Repeat("é", 10<<10) // 20 KiB of two-byte runes
	_, err := f.m.SwitchTo("bob", reason)
	require.NoError(t, err)

	data := journalBytes(t, f.m)
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		assert.LessOrEqual(t, len(line), journalMaxLine)
	}
	entries := journalOf(t, f.m)
	require.Len(t, entries, 2)
	for _, e := range entries {
		assert.NotEmpty(t, e.Reason)
		assert.True(t, strings.HasPrefix(reason, e.Reason), "the reason is shortened, not replaced")
	}
	sub, ok := f.m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "bob", sub)
}

// captureFill returns capture records totalling at least n bytes.
func captureFill(t testing.TB, n int) []byte {
	t.Helper()
	line, err := encodeJournalLine(JournalEntry{Time: testNow, Op: opCapture, Phase: phaseDone, Sub: "bob",
		Reason: "fingerprint captured " + strings.Repeat("x", 200)})
	require.NoError(t, err)
	return bytes.Repeat(line, n/len(line)+1)
}

func TestJournalRotationKeepsLastSwitch(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	mt := testNow
	var buf bytes.Buffer
	for _, e := range []JournalEntry{
		{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: "old-bob", Sub: "bob"},
		{Time: testNow, Op: opSwitch, Phase: phaseDone, ID: "old-bob", Sub: "bob", LiveMtime: &mt},
		{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: "last-alice", Sub: "alice", From: "bob"},
		{Time: testNow, Op: opSwitch, Phase: phaseDone, ID: "last-alice", Sub: "alice", From: "bob", LiveMtime: &mt},
	} {
		line, err := encodeJournalLine(e)
		require.NoError(t, err)
		buf.Write(line)
	}
	buf.Write(captureFill(t, journalRotateAt+10<<10))
	writeFile(t, f.m.journalPath(), buf.Bytes())
	require.Greater(t, buf.Len(), journalRotateAt)
	sub, ok := f.m.LastActive()
	require.True(t, ok)
	require.Equal(t, "alice", sub)

	// One more change, not a switch: the journal is rotated.
	_, err := f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)

	data := journalBytes(t, f.m)
	assert.Less(t, len(data), journalKeep+8<<10, "rotated to about %d bytes", journalKeep)
	fi, err := os.Stat(f.m.journalPath())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	entries := journalOf(t, f.m)
	require.GreaterOrEqual(t, len(entries), 3)
	assert.Equal(t, "last-alice", entries[0].ID, "the last switch's intent survives, first")
	assert.Equal(t, "intent", entries[0].Phase)
	assert.Equal(t, "last-alice", entries[1].ID)
	assert.Equal(t, "done", entries[1].Phase)
	for _, e := range entries {
		assert.NotEqual(t, "old-bob", e.ID, "older switches are rotated out")
	}
	last := entries[len(entries)-1]
	assert.Equal(t, "capture", last.Op)
	assert.Equal(t, "fingerprint captured", last.Reason, "the new record is kept")

	sub, ok = f.m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "alice", sub)
}

// TestJournalRotationSplittingAChange rotates at a point that falls between
// the intent and the done record of the last completed switch: the size
// window keeps the done record and drops its intent.
func TestJournalRotationSplittingAChange(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	mt := testNow
	enc := func(e JournalEntry) []byte {
		line, err := encodeJournalLine(e)
		require.NoError(t, err)
		return line
	}
	intent := enc(JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: "last-alice", Sub: "alice", From: "bob"})
	done := enc(JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseDone, ID: "last-alice", Sub: "alice", From: "bob", LiveMtime: &mt})
	// After the done record: capture records that, with it, fill the kept
	// window exactly, so that the intent just before falls out of it.
	capture := func(reasonLen int) []byte {
		return enc(JournalEntry{Time: testNow, Op: opCapture, Phase: phaseDone, Sub: "bob", Reason: strings.Repeat("x", reasonLen)})
	}
	unit := capture(200)
	var tail bytes.Buffer
	for tail.Len()+len(done)+2*len(unit) <= journalKeep {
		tail.Write(unit)
	}
	rest := journalKeep - tail.Len() - len(done)
	last := capture(200 + rest - len(unit))
	require.Len(t, last, rest)
	tail.Write(last)
	require.Equal(t, journalKeep, tail.Len()+len(done))

	var buf bytes.Buffer
	buf.Write(captureFill(t, journalRotateAt-journalKeep+10<<10))
	buf.Write(enc(JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: "old-bob", Sub: "bob"}))
	buf.Write(enc(JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseDone, ID: "old-bob", Sub: "bob", LiveMtime: &mt}))
	buf.Write(intent)
	buf.Write(done)
	buf.Write(tail.Bytes())
	require.Greater(t, buf.Len(), journalRotateAt)
	writeFile(t, f.m.journalPath(), buf.Bytes())
	sub, ok := f.m.LastActive()
	require.True(t, ok)
	require.Equal(t, "alice", sub)

	_, err := f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	assert.Less(t, len(journalBytes(t, f.m)), journalKeep+8<<10)

	sub, ok = f.m.LastActive()
	assert.True(t, ok, "rotation must never drop the last completed switch")
	assert.Equal(t, "alice", sub)
}

func TestLastActive(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")

	sub, ok := f.m.LastActive()
	assert.False(t, ok, "empty journal")
	assert.Equal(t, "", sub)

	_, err := f.m.SwitchTo("alice", "r")
	require.NoError(t, err)
	sub, ok = f.m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "alice", sub)

	// Another manager on the same dir sees it too.
	sub, ok = plainManager(t, f.dir).LastActive()
	assert.True(t, ok)
	assert.Equal(t, "alice", sub)

	f.refresh(t, claudeDoc(fresh, "rt-bob-2"))
	// The journal says alice is live: naming bob takes force.
	_, err = f.m.HealDriftTo("bob")
	require.ErrorIs(t, err, ErrIdentityDrift)
	_, err = f.m.HealDriftTo("bob", Force())
	require.NoError(t, err)
	sub, ok = f.m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "bob", sub, "a heal makes its sub active")

	// A capture or a restore does not change it.
	_, err = f.m.CaptureSlotFingerprint("alice")
	require.NoError(t, err)
	sub, _ = f.m.LastActive()
	assert.Equal(t, "bob", sub)
}

func TestLastActiveIntentWithoutDone(t *testing.T) {
	t.Run("appended by hand", func(t *testing.T) {
		f := newFixture(t)
		writeSlot(t, f.slot("alice"), fresh, "rt-alice")
		_, err := f.m.SwitchTo("alice", "r")
		require.NoError(t, err)
		appendJournal(t, f.m, JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: "killed", Sub: "bob", From: "alice"})
		sub, ok := f.m.LastActive()
		assert.False(t, ok, "the newest change's outcome is unknown")
		assert.Equal(t, "", sub)
		// A later capture does not settle it.
		_, err = f.m.CaptureSlotFingerprint("alice")
		require.NoError(t, err)
		_, ok = f.m.LastActive()
		assert.False(t, ok)
	})
	t.Run("done append fails", func(t *testing.T) {
		// Appends: the sweep marker's creation, the intent (twice: the
		// first append finds no journal, the second creates it), the done
		// record (no CLI locks: no owner record beside Claude Code's
		// refresh lock).
		ffs := &faultFS{inner: disk.OS{}, failAt: 4, ops: map[string]bool{"append": true}}
		f := newFixture(t, withFS(ffs), WithCLILocks(false))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		writeSlot(t, f.slot("alice"), fresh, "rt-alice")
		f.link(t, "alice")
		res, err := f.m.SwitchTo("bob", "r")
		require.Equal(t, []string{"append swept", "append journal.jsonl", "append journal.jsonl", "append journal.jsonl"}, ffs.log, "the done record's append failed")
		require.NoError(t, err, "the change itself was made")
		assert.True(t, res.OK)
		assert.Equal(t, ".credentials.json.bob", f.readlink(t))
		assert.Contains(t, f.logs.String(), "journal record failed")
		entries := journalOf(t, f.m)
		require.Len(t, entries, 1)
		assert.Equal(t, "intent", entries[0].Phase)
		_, ok := f.m.LastActive()
		assert.False(t, ok)

		f.refreshAt(t, claudeDoc(fresh, "rt-bob-2"), time.Now().Add(time.Hour))
		before := snapshot(t, f.dir)
		_, err = f.m.HealDrift()
		require.ErrorIs(t, err, ErrAmbiguous)
		assert.Equal(t, before, snapshot(t, f.dir))
	})
}

func TestLastActiveSkipsFailedChange(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err := f.m.SwitchTo("alice", "r")
	require.NoError(t, err)

	ffs := &faultFS{inner: disk.OS{}, failAt: 1, ops: map[string]bool{"exchange": true}}
	faulty := plainManager(t, f.dir, withFS(ffs))
	_, err = faulty.SwitchTo("bob", "r")
	require.ErrorIs(t, err, errInjected)
	assert.Equal(t, ".credentials.json.alice", f.readlink(t))

	phases := []string{}
	for _, e := range journalOf(t, f.m) {
		phases = append(phases, e.Sub+"/"+e.Phase)
	}
	assert.Equal(t, []string{"alice/intent", "alice/done", "bob/intent", "bob/failed"}, phases)
	sub, ok := f.m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "alice", sub, "the failed switch is skipped")
}

func TestHealDriftHealsIntoLastActive(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	oldAlice := writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "bob")
	_, err := f.m.SwitchTo("alice", "rotate")
	require.NoError(t, err)
	done := journalOf(t, f.m)[1]
	require.NotNil(t, done.LiveMtime)

	refreshed := claudeDoc(fresh.Add(time.Hour), "rt-alice-2")
	f.refreshAt(t, refreshed, done.LiveMtime.Add(time.Second))

	res, err := f.m.HealDrift()
	require.NoError(t, err)
	assert.Equal(t, SwitchResult{OK: true, Reason: "healed: synced live → .credentials.json.alice, symlink restored", Sub: "alice", From: "alice"}, res)
	got, err := os.ReadFile(f.slot("alice"))
	require.NoError(t, err)
	assert.Equal(t, refreshed, got)
	prev, err := os.ReadFile(f.slot("alice") + ".prev")
	require.NoError(t, err)
	assert.Equal(t, oldAlice, prev)
	assert.Equal(t, ".credentials.json.alice", f.readlink(t))
	assert.Equal(t, []string{"alice|rotate", "alice|" + healHookReason}, f.hook.get())
	sub, _ := f.m.LastActive()
	assert.Equal(t, "alice", sub)

	// A second refresh heals again, into the same sub.
	again := claudeDoc(fresh.Add(2*time.Hour), "rt-alice-3")
	f.refreshAt(t, again, time.Now().Add(time.Hour))
	_, err = f.m.HealDrift()
	require.NoError(t, err)
	got, err = os.ReadFile(f.slot("alice"))
	require.NoError(t, err)
	assert.Equal(t, again, got)
}

func TestHealDriftAmbiguous(t *testing.T) {
	tests := []struct {
		name string
		// setup leaves a drifted live file.
		setup func(t *testing.T, f *fixture)
		why   string
	}{
		{"empty journal", func(t *testing.T, f *fixture) {
			f.link(t, "bob")
			f.refreshAt(t, claudeDoc(fresh, "rt-x"), time.Now().Add(time.Hour))
		}, "no completed switch or heal"},
		{"intent without done", func(t *testing.T, f *fixture) {
			_, err := f.m.SwitchTo("alice", "r")
			require.NoError(t, err)
			appendJournal(t, f.m, JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: "killed", Sub: "bob", From: "alice"})
			f.refreshAt(t, claudeDoc(fresh, "rt-x"), time.Now().Add(time.Hour))
		}, "has no done record"},
		{"live file older than the switch", func(t *testing.T, f *fixture) {
			_, err := f.m.SwitchTo("alice", "r")
			require.NoError(t, err)
			done := journalOf(t, f.m)[1]
			require.NotNil(t, done.LiveMtime)
			f.refreshAt(t, claudeDoc(fresh, "rt-x"), done.LiveMtime.Add(-time.Second))
		}, "not after the switch to alice"},
		{"live file as old as the switch, made without the CLI locks", func(t *testing.T, f *fixture) {
			_, err := plainManager(t, f.dir).SwitchTo("alice", "r")
			require.NoError(t, err)
			done := journalOf(t, f.m)[1]
			require.NotNil(t, done.LiveMtime)
			f.refreshAt(t, claudeDoc(fresh, "rt-x"), *done.LiveMtime)
		}, "not after the switch to alice"},
		{"last active sub no longer configured", func(t *testing.T, f *fixture) {
			mt := time.Now().Add(-time.Hour)
			appendJournal(t, f.m,
				JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: "z", Sub: "zed"},
				JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseDone, ID: "z", Sub: "zed", LiveMtime: &mt})
			f.refreshAt(t, claudeDoc(fresh, "rt-x"), time.Now().Add(time.Hour))
		}, "not configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			writeSlot(t, f.slot("alice"), fresh, "rt-alice")
			tt.setup(t, f)
			before := snapshot(t, f.dir)
			journal := journalBytes(t, f.m)
			hooks := len(f.hook.get())

			res, err := f.m.HealDrift()
			require.ErrorIs(t, err, ErrAmbiguous)
			assert.False(t, res.OK)
			assert.Contains(t, res.Reason, tt.why)
			assert.Contains(t, err.Error(), res.Reason)
			assert.Equal(t, before, snapshot(t, f.dir), "nothing changes")
			assert.Equal(t, journal, journalBytes(t, f.m))
			assert.Equal(t, "", f.readlink(t), "the live file stays")
			assert.Len(t, f.hook.get(), hooks, "no on-switch call")
		})
	}
}

func TestHealDriftNoDrift(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	// No live path, empty journal.
	_, err := f.m.HealDrift()
	require.ErrorIs(t, err, ErrNoDrift)
	// A live symlink matching a slot, empty journal.
	f.link(t, "bob")
	res, err := f.m.HealDrift()
	require.ErrorIs(t, err, ErrNoDrift)
	assert.Equal(t, "no drift", res.Reason)
	// After a switch.
	_, err = f.m.SwitchTo("bob", "r")
	require.NoError(t, err)
	_, err = f.m.HealDrift()
	require.ErrorIs(t, err, ErrNoDrift)
	assert.Len(t, journalOf(t, f.m), 2, "refusals write nothing")
}

// TestHealDriftKillAtEveryStep fails each file-system operation of a switch
// and of a heal in turn, after a completed switch, and checks that the
// journal never claims a change that did not happen: either the change is
// done (and the live path changed), or failed (and it did not), or its
// outcome is unknown (and HealDrift refuses to guess).
func TestHealDriftKillAtEveryStep(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, f *fixture)
		run   func(m *Manager) error
		// changed reports whether the live path shows the change made.
		changed func(t *testing.T, f *fixture) bool
		sub     string
	}{
		{
			name:  "switch",
			setup: func(t *testing.T, f *fixture) {},
			run:   func(m *Manager) error { _, err := m.SwitchTo("bob", "rotate"); return err },
			changed: func(t *testing.T, f *fixture) bool {
				target := f.readlink(t)
				require.Contains(t, []string{".credentials.json.alice", ".credentials.json.bob"}, target)
				return target == ".credentials.json.bob"
			},
			sub: "bob",
		},
		{
			name: "heal",
			setup: func(t *testing.T, f *fixture) {
				f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-alice-2"), time.Now().Add(time.Hour))
			},
			run: func(m *Manager) error { _, err := m.HealDrift(); return err },
			changed: func(t *testing.T, f *fixture) bool {
				target := f.readlink(t)
				if target == "" {
					got, err := os.ReadFile(f.m.LivePath())
					require.NoError(t, err)
					require.Equal(t, "rt-alice-2", refreshTokenOf(got), "the live file is kept")
					return false
				}
				require.Equal(t, ".credentials.json.alice", target)
				got, err := os.ReadFile(f.slot("alice"))
				require.NoError(t, err)
				require.Equal(t, "rt-alice-2", refreshTokenOf(got), "healed into the slot")
				return true
			},
			sub: "alice",
		},
	}
	prepare := func(t *testing.T, ffs *faultFS) *fixture {
		f := newFixture(t, withFS(ffs), WithCLILocks(false))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		writeSlot(t, f.slot("alice"), fresh, "rt-alice")
		_, err := plainManager(t, f.dir).SwitchTo("alice", "start")
		require.NoError(t, err)
		return f
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counter := &faultFS{inner: disk.OS{}, failAt: -1}
			f := prepare(t, counter)
			tt.setup(t, f)
			require.NoError(t, tt.run(f.m))
			total := counter.count()
			require.Greater(t, total, 5)

			seen := map[string]int{}
			for k := 1; k <= total; k++ {
				ffs := &faultFS{inner: disk.OS{}, failAt: k}
				f := prepare(t, ffs)
				tt.setup(t, f)
				err := tt.run(f.m)
				step := "?"
				if k <= len(ffs.log) {
					step = ffs.log[k-1]
				}
				changed := tt.changed(t, f)
				if err == nil {
					assert.True(t, changed, "k=%d (%s): success means the change was made", k, step)
				}

				entries := journalOf(t, plainManager(t, f.dir))
				require.GreaterOrEqual(t, len(entries), 2)
				mine := entries[2:] // the setup's switch wrote two records
				mine = append(ofOp(mine, opSwitch), ofOp(mine, opHeal)...)
				var intent, done, failed int
				for _, e := range mine {
					assert.Equal(t, tt.sub, e.Sub)
					assert.Equal(t, mine[0].ID, e.ID, "k=%d (%s): one change", k, step)
					switch e.Phase {
					case phaseIntent:
						intent++
					case phaseDone:
						done++
					case phaseFailed:
						failed++
					}
				}
				sub, ok := plainManager(t, f.dir).LastActive()
				switch {
				case intent == 0:
					seen["no intent"]++
					assert.Zero(t, done+failed, "k=%d (%s)", k, step)
					assert.False(t, changed, "k=%d (%s): a change without an intent record", k, step)
					assert.True(t, ok)
					assert.Equal(t, "alice", sub)
				case intent == 1 && done == 1 && failed == 0:
					seen["done"]++
					assert.True(t, changed, "k=%d (%s): a done record for a live path that did not change", k, step)
					assert.True(t, ok)
					assert.Equal(t, tt.sub, sub)
				case intent == 1 && failed == 1 && done == 0:
					seen["failed"]++
					assert.False(t, changed, "k=%d (%s): a failed record for a change that was made", k, step)
					assert.Error(t, err, "k=%d (%s)", k, step)
					assert.True(t, ok)
					assert.Equal(t, "alice", sub)
				case intent == 1 && done == 0 && failed == 0:
					seen["unknown"]++
					assert.False(t, ok, "k=%d (%s): LastActive must not guess", k, step)
					f.refreshAt(t, claudeDoc(fresh.Add(3*time.Hour), "rt-later"), time.Now().Add(2*time.Hour))
					before := snapshot(t, f.dir)
					_, herr := plainManager(t, f.dir).HealDrift()
					if tt.name == "switch" {
						// Either sub's token may be live: nothing to go on.
						assert.ErrorIs(t, herr, ErrAmbiguous, "k=%d (%s)", k, step)
						assert.Equal(t, before, snapshot(t, f.dir), "k=%d (%s)", k, step)
						break
					}
					// An interrupted heal is finished, not flagged: its
					// intent names the login it wrote, so the next heal
					// completes it and heals the later refresh.
					require.NoError(t, herr, "k=%d (%s)", k, step)
					got, rerr := os.ReadFile(f.slot("alice"))
					require.NoError(t, rerr)
					assert.Equal(t, "rt-later", refreshTokenOf(got), "k=%d (%s)", k, step)
					assert.Equal(t, ".credentials.json.alice", f.readlink(t), "k=%d (%s)", k, step)
				default:
					t.Errorf("k=%d (%s): unexpected records %+v", k, step, mine)
				}
			}
			t.Logf("outcomes over %d steps: %v", total, seen)
			assert.Positive(t, seen["done"])
			assert.Positive(t, seen["failed"])
			assert.Positive(t, seen["unknown"])
		})
	}
}

func TestJournalMigratesOldSwitchLog(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	old := []byte(`{"time":"2026-01-01T09:00:00Z","action":"switch","sub":"bob","reason":"first"}` + "\n" +
		`{"time":"2026-01-01T10:00:00+01:00","action":"heal","sub":"bob","reason":"healed"}` + "\n" +
		"garbage line\n" +
		`{"time":"2026-01-01T10:30:00Z","action":"status","sub":"bob"}` + "\n" +
		`{"time":"2026-01-01T11:00:00Z","action":"switch","sub":"alice","reason":"r"}` + "\n")
	oldPath := filepath.Join(f.dir, ".credslots-switches.jsonl")
	writeFile(t, oldPath, old)

	// Before any change, the old log is read.
	sub, ok := f.m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "alice", sub)
	entries := journalOf(t, f.m)
	require.Len(t, entries, 3)
	for _, e := range entries {
		assert.True(t, e.Migrated)
		assert.Equal(t, "done", e.Phase)
	}
	assert.Equal(t, "heal", entries[1].Op)
	assert.True(t, entries[1].Time.Equal(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)))
	assert.Equal(t, time.UTC, entries[1].Time.Location())
	assert.NoDirExists(t, filepath.Join(f.dir, ".credslots"), "reading changes nothing")

	// The first change migrates it.
	f.link(t, "alice")
	_, err := f.m.SwitchTo("bob", "rotate")
	require.NoError(t, err)
	entries = journalOf(t, f.m)
	require.Len(t, entries, 5)
	want := []string{"switch/bob/first", "heal/bob/healed", "switch/alice/r"}
	for i, w := range want {
		assert.Equal(t, w, entries[i].Op+"/"+entries[i].Sub+"/"+entries[i].Reason)
		assert.True(t, entries[i].Migrated)
		assert.Equal(t, "done", entries[i].Phase)
	}
	assert.Equal(t, "intent", entries[3].Phase)
	assert.Equal(t, "alice", entries[3].From)
	assert.False(t, entries[3].Migrated)
	assert.Equal(t, "done", entries[4].Phase)
	assert.NoFileExists(t, oldPath)
	moved, err := os.ReadFile(filepath.Join(f.dir, ".credslots", "switches.jsonl.migrated"))
	require.NoError(t, err)
	assert.Equal(t, old, moved)
	sub, _ = f.m.LastActive()
	assert.Equal(t, "bob", sub)

	// Read once: a new old log is no longer consulted.
	writeFile(t, oldPath, []byte(`{"time":"2026-01-01T11:59:00Z","action":"switch","sub":"erik","reason":"x"}`+"\n"))
	sub, _ = f.m.LastActive()
	assert.Equal(t, "bob", sub)
}

func TestHealDriftFromMigratedLog(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	writeFile(t, filepath.Join(f.dir, ".credslots-switches.jsonl"),
		[]byte(`{"time":"2026-01-01T10:00:00Z","action":"switch","sub":"alice","reason":"r"}`+"\n"))
	f.link(t, "alice")
	refreshed := claudeDoc(fresh.Add(time.Hour), "rt-alice-2")
	f.refreshAt(t, refreshed, time.Date(2026, 1, 1, 10, 5, 0, 0, time.UTC))

	_, err := f.m.HealDrift()
	require.NoError(t, err)
	got, err := os.ReadFile(f.slot("alice"))
	require.NoError(t, err)
	assert.Equal(t, refreshed, got)
	entries := journalOf(t, f.m)
	require.Len(t, entries, 3)
	assert.True(t, entries[0].Migrated)
}

func TestIdentityCheckedHeals(t *testing.T) {
	cases := []struct {
		format Format
		doc    func(time.Time, string) []byte
		field  string
	}{
		{CodexCLI, codexDoc, "tokens.account_id"},
		{GeminiCLI, geminiDoc, "refresh_token"},
	}
	for _, fc := range cases {
		t.Run(fc.format.Name(), func(t *testing.T) {
			setup := func(t *testing.T) *fixture {
				f := newFixture(t, WithFormat(fc.format))
				writeFile(t, f.slot("bob"), fc.doc(fresh, "id-bob"))
				writeFile(t, f.slot("alice"), fc.doc(fresh, "id-alice"))
				_, err := f.m.SwitchTo("bob", "start") // captures bob's identity
				require.NoError(t, err)
				return f
			}
			refusals := []struct {
				name, identity, why string
				heal                func(m *Manager) (SwitchResult, error)
			}{
				{"another slot's identity", "id-alice", "that of slot alice", func(m *Manager) (SwitchResult, error) { return m.HealDriftTo("bob") }},
				{"another slot's identity via HealDrift", "id-alice", "that of slot alice", func(m *Manager) (SwitchResult, error) { return m.HealDrift() }},
				{"not the captured identity", "id-stranger", "differs from the one captured for bob", func(m *Manager) (SwitchResult, error) { return m.HealDriftTo("bob") }},
			}
			for _, rc := range refusals {
				t.Run(rc.name, func(t *testing.T) {
					f := setup(t)
					f.refreshAt(t, fc.doc(fresh.Add(time.Hour), rc.identity), time.Now().Add(time.Hour))
					before := snapshot(t, f.dir)
					res, err := rc.heal(f.m)
					require.ErrorIs(t, err, ErrIdentityDrift)
					assert.False(t, res.OK)
					assert.Contains(t, res.Reason, fc.field)
					assert.Contains(t, res.Reason, rc.why)
					assert.NotContains(t, res.Reason, "refresh token")
					assert.Equal(t, before, snapshot(t, f.dir), "nothing changes")

					// Force overrides.
					res, err = f.m.HealDriftTo("bob", Force())
					require.NoError(t, err)
					assert.True(t, res.OK)
					assert.Equal(t, filepath.Base(f.slot("bob")), f.readlink(t))
				})
			}
			t.Run("own identity heals", func(t *testing.T) {
				f := setup(t)
				refreshed := fc.doc(fresh.Add(time.Hour), "id-bob")
				f.refreshAt(t, refreshed, time.Now().Add(time.Hour))
				_, err := f.m.HealDrift()
				require.NoError(t, err)
				got, err := os.ReadFile(f.slot("bob"))
				require.NoError(t, err)
				assert.Equal(t, refreshed, got)
			})
			t.Run("identity drift reasons", func(t *testing.T) {
				f := setup(t)
				writeFile(t, f.slot("bob"), fc.doc(fresh, "id-other"))
				info, err := f.m.DetectSlotIdentityDrift("bob")
				require.NoError(t, err)
				assert.True(t, info.Drift)
				assert.Equal(t, fc.field+" changed since last capture — slot identity may have been replaced", info.Reason)
			})
		})
	}
	t.Run("codex slot without account_id", func(t *testing.T) {
		f := newFixture(t, WithFormat(CodexCLI))
		writeFile(t, f.slot("bob"), codexDoc(fresh, "id-bob"))
		_, err := f.m.CaptureSlotFingerprint("bob")
		require.NoError(t, err)
		writeFile(t, f.slot("bob"), []byte(`{"tokens":{"access_token":"`+testJWT(`{"exp":1767312000}`)+`"}}`))
		info, err := f.m.DetectSlotIdentityDrift("bob")
		require.NoError(t, err)
		assert.True(t, info.Drift)
		assert.Equal(t, "slot is missing or has no tokens.account_id; cannot verify identity", info.Reason)
	})
	t.Run("claude code: a rotated token heals, another slot's is refused", func(t *testing.T) {
		f := newFixture(t)
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		writeSlot(t, f.slot("alice"), fresh, "rt-alice")
		_, err := f.m.SwitchTo("bob", "start")
		require.NoError(t, err)
		_, err = f.m.CaptureSlotFingerprint("alice")
		require.NoError(t, err)
		// A live file holding alice's own refresh token is her login,
		// whatever the journal says.
		f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-alice"), time.Now().Add(time.Hour))
		_, err = f.m.HealDriftTo("bob")
		require.ErrorIs(t, err, ErrIdentityDrift)
		assert.Contains(t, err.Error(), "slot alice")
		// Claude Code rotates its refresh token on every refresh, so a
		// refreshed file never carries the captured identity.
		f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"), time.Now().Add(time.Hour))
		_, err = f.m.HealDriftTo("bob")
		require.NoError(t, err)
		f.refreshAt(t, claudeDoc(fresh.Add(2*time.Hour), "rt-rotated"), time.Now().Add(2*time.Hour))
		_, err = f.m.HealDrift()
		require.NoError(t, err)
	})
}

// FuzzJournalLine checks that parseJournalLine never panics, accepts only
// bounded records with an op, a phase and a sub, and that what it accepts
// survives re-encoding.
func FuzzJournalLine(f *testing.F) {
	mt := testNow.Add(time.Minute)
	for _, e := range []JournalEntry{
		{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: "0123456789abcdef", Sub: "bob", From: "alice", Reason: "quota"},
		{Time: testNow, Op: opHeal, Phase: phaseDone, ID: "x", Sub: "bob", Reason: healHookReason, LiveMtime: &mt},
		{Time: testNow, Op: opSwitch, Phase: phaseFailed, ID: "y", Sub: "alice", Error: "exchange: injected fault"},
		{Time: testNow, Op: opSwitch, Phase: phaseDone, Sub: "alice", Migrated: true},
		{Time: testNow, Op: opKeep, Phase: phaseDone, Fingerprint: "fp", Account: "d-4", Kept: ".credentials.json.prev"},
	} {
		line, err := encodeJournalLine(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.TrimSuffix(line, []byte("\n")))
	}
	f.Add([]byte(`{"op":"switch","phase":"done","sub":"b","time":"2026-01-01T10:00:00+05:30","live_mtime":null}`))
	f.Add([]byte(`{"OP":"capture","Phase":"done","SUB":"\u00e9\ud800","reason":"<&>"}`))
	f.Add([]byte(`{"op":"switch","phase":"done"}`))
	f.Add([]byte(`{"op":"keep","phase":"done","sub":""}`))
	f.Add([]byte(`{"op":"switch","phase":"done","sub":"","account":"d-4"}`))
	f.Add([]byte(`{"op":1}`))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, ok := parseJournalLine(line)
		if !ok {
			return
		}
		if e.Op == "" || e.Phase == "" || e.Sub == "" && (e.Op != opKeep || e.Account == "") {
			t.Fatalf("accepted a record without op, phase or sub (only a keep record naming an account may lack a sub): %+v", e)
		}
		if len(line) > journalMaxLine {
			t.Fatalf("accepted a line of %d bytes", len(line))
		}
		again, err := encodeJournalLine(e)
		if err != nil {
			if raw, merr := json.Marshal(e); merr == nil && len(raw) < journalMaxLine {
				t.Fatalf("could not re-encode %+v: %v", e, err)
			}
			return
		}
		if len(again) > journalMaxLine || bytes.IndexByte(again, '\n') != len(again)-1 {
			t.Fatalf("encoded line is not one bounded line: %q", again)
		}
		e2, ok := parseJournalLine(again[:len(again)-1])
		if !ok {
			t.Fatalf("re-encoded line refused: %q", again)
		}
		raw, _ := json.Marshal(e)
		shortened := len(raw) >= journalMaxLine
		if !e.Time.Equal(e2.Time) || e.Op != e2.Op || e.Phase != e2.Phase || e.ID != e2.ID ||
			e.Sub != e2.Sub || e.From != e2.From || e.Migrated != e2.Migrated ||
			(e.LiveMtime == nil) != (e2.LiveMtime == nil) || (e.LiveMtime != nil && !e.LiveMtime.Equal(*e2.LiveMtime)) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", e, e2)
		}
		if shortened {
			if !strings.HasPrefix(e.Reason, e2.Reason) || !strings.HasPrefix(e.Error, e2.Error) {
				t.Fatalf("shortening replaced text:\n%+v\n%+v", e, e2)
			}
		} else if e.Reason != e2.Reason || e.Error != e2.Error {
			t.Fatalf("round trip changed the text:\n%+v\n%+v", e, e2)
		}
	})
}

// An old switch log over 1 MiB is not migrated, and never stops a change.
func TestOldSwitchLogTooLargeIsNotFatal(t *testing.T) {
	f := newFixture(t, WithCLILocks(false))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "bob")
	var buf bytes.Buffer
	for buf.Len() <= 1<<20 {
		fmt.Fprintf(&buf, `{"time":"2025-06-01T10:00:00Z","action":"switch","sub":"bob","reason":"cron auto-rotate"}`+"\n")
	}
	writeFile(t, filepath.Join(f.dir, ".credslots-switches.jsonl"), buf.Bytes())
	_, ok := f.m.LastActive()
	assert.False(t, ok, "unreadable, so unknown")
	for i := 0; i < 2; i++ {
		_, err := f.m.SwitchTo("alice", "x")
		require.NoError(t, err, "attempt %d", i)
	}
	sub, ok := f.m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "alice", sub)
	assert.NoFileExists(t, filepath.Join(f.dir, ".credslots-switches.jsonl"), "moved aside")
}

// syncFailAfterPlace fails the directory sync that follows placing the live
// symlink where there was none.
type syncFailAfterPlace struct {
	disk.FS
	placed bool
}

func (s *syncFailAfterPlace) RenameNoReplace(from, to string) error {
	err := s.FS.RenameNoReplace(from, to)
	if err == nil && filepath.Base(to) == ".credentials.json" {
		s.placed = true
	}
	return err
}
func (s *syncFailAfterPlace) SyncDir(dir string) error {
	if s.placed {
		s.placed = false
		return errors.New("injected EIO on directory fsync")
	}
	return s.FS.SyncDir(dir)
}

func TestLiveChangedBeforeAFailedSyncIsJournaledDone(t *testing.T) {
	fsys := &syncFailAfterPlace{FS: disk.OS{}}
	f := newFixture(t, WithCLILocks(false), withFS(fsys))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "bob")
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	require.NoError(t, os.Remove(f.m.LivePath())) // e.g. `claude auth logout`
	_, err = f.m.SwitchTo("alice", "rotate")
	require.Error(t, err, "the directory sync failed")
	assert.Contains(t, err.Error(), "the live path was changed")
	require.Equal(t, ".credentials.json.alice", f.readlink(t))
	last, ok := f.m.LastActive()
	require.True(t, ok)
	assert.Equal(t, "alice", last, "the journal says what the live path holds")
	// Claude refreshes alice's token (the live path points at alice).
	f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-alice-2"), time.Now().Add(time.Second))
	_, err = f.m.HealDrift()
	require.NoError(t, err)
	bob, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, "rt-bob", refreshTokenOf(bob), "alice's token never lands in bob's slot")
	alice, err := os.ReadFile(f.slot("alice"))
	require.NoError(t, err)
	assert.Equal(t, "rt-alice-2", refreshTokenOf(alice))
}

// The old switch log kept whole seconds: a live file written within the
// second of a migrated switch may predate it, so HealDrift refuses.
func TestHealDriftMigratedRecordsKeepWholeSeconds(t *testing.T) {
	f := newFixture(t, WithCLILocks(false))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	// Old command: switch to bob really at 10:00:00.900, logged as 10:00:00.
	writeFile(t, filepath.Join(f.dir, ".credslots-switches.jsonl"),
		[]byte(`{"time":"2026-01-01T10:00:00Z","action":"switch","sub":"bob","reason":"r"}`+"\n"))
	f.link(t, "bob")
	// alice's in-flight refresh: written at 10:00:00.400 (before the switch), renamed after.
	f.refreshAt(t, claudeDoc(fresh.Add(time.Hour), "rt-alice-2"), time.Date(2026, 1, 1, 10, 0, 0, 400e6, time.UTC))
	_, err := f.m.HealDrift()
	require.ErrorIs(t, err, ErrAmbiguous)
	bob, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, "rt-bob", refreshTokenOf(bob), "a file older than the switch is not healed into bob")
}
