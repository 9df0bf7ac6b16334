package credslots

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// journalEntrySamples covers every field of a record, set and unset.
func journalEntrySamples() []JournalEntry {
	mt := testNow.Add(time.Minute)
	until := testNow.Add(time.Hour).UTC()
	return []JournalEntry{
		{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: "0123456789abcdef", Sub: "bob", From: "alice", Reason: "quota <&> \"q\" \\ \n\t\b\f\x01 é \u2028\u2029 \xff",
			Fingerprint: "ab", CLILocks: true, Holder: &LockHolder{PID: 42, ProcStart: "99", Locks: []HeldLock{{Path: "/d/.lock", Inode: 7, BirthSec: 1, BirthNsec: 2}, {Path: "/e"}}}},
		{Time: testNow, Op: opSwitch, Phase: phaseIntent, Sub: "bob", Holder: &LockHolder{PID: 1}},
		{Time: testNow, Op: opSwitch, Phase: phaseIntent, Sub: "bob", Holder: &LockHolder{PID: 1, Locks: []HeldLock{}}},
		{Time: testNow.Add(123456789), Op: opHeal, Phase: phaseDone, ID: "x", Sub: "bob", LiveMtime: &mt, Account: "acc", Seat: "/s"},
		{Time: testNow, Op: opRest, Phase: phaseDone, Sub: "bob", Until: &until, Error: "e", Kept: "k"},
		{Time: testNow, Op: opSwitch, Phase: phaseDone, Sub: "alice", Migrated: true},
		{},
	}
}

// TestJournalLineIsWhatEncodingJSONWrites holds the appender to
// encoding/json's bytes, and the line to what encoding/json decodes.
func TestJournalLineIsWhatEncodingJSONWrites(t *testing.T) {
	for _, e := range journalEntrySamples() {
		want, err := json.Marshal(e)
		require.NoError(t, err)
		got, err := appendJournalLine(nil, &e)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got))
		var back, wantBack JournalEntry
		require.NoError(t, json.Unmarshal(got, &back))
		require.NoError(t, json.Unmarshal(want, &wantBack))
		assert.Equal(t, wantBack, back, "round trip")
	}
	bad := JournalEntry{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Op: opSwitch, Phase: phaseDone, Sub: "b"}
	_, jerr := json.Marshal(bad)
	require.Error(t, jerr)
	_, err := encodeJournalLine(bad)
	assert.Error(t, err, "a time encoding/json refuses is refused")
}

// FuzzJournalLineEncoding: for any text in a record's strings, the
// appender writes encoding/json's bytes.
func FuzzJournalLineEncoding(f *testing.F) {
	f.Add("bob", "quota", "exchange: injected", "/d/.lock", int64(0))
	f.Add("\xff\xfe", "<script>&", "\u2028\x00\x1f", "\"\\", int64(-1))
	f.Fuzz(func(t *testing.T, sub, reason, errText, path string, ns int64) {
		mt := time.Unix(0, ns).UTC()
		e := JournalEntry{Time: mt, Op: opSwitch, Phase: phaseIntent, ID: reason, Sub: sub, Reason: reason, Error: errText,
			LiveMtime: &mt, Holder: &LockHolder{PID: int(ns), ProcStart: sub, Locks: []HeldLock{{Path: path, BirthNsec: ns}}}}
		want, werr := json.Marshal(e)
		got, gerr := appendJournalLine(nil, &e)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("encoding/json: %v, appender: %v", werr, gerr)
		}
		if werr == nil && !bytes.Equal(want, got) {
			t.Fatalf("encoding/json %s\nappender      %s", want, got)
		}
	})
}

// TestRotationDecodesOnlyWhatItKeeps: rotation finds the last completed
// switch from the newest lines and keeps its older records by their id,
// without decoding the lines of other changes (a malformed older line of
// another change is dropped, never needed).
func TestRotationKeepsTheLastSwitchByItsID(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	for _, e := range []JournalEntry{
		{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: "aaaa", Sub: "bob"},
		{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: "last", Sub: "alice"},
		{Time: testNow, Op: opSwitch, Phase: phaseDone, ID: "aaaa", Sub: "bob"},
		{Time: testNow, Op: opSwitch, Phase: phaseDone, ID: "last", Sub: "alice"},
	} {
		line, err := encodeJournalLine(e)
		require.NoError(t, err)
		buf.Write(line)
	}
	buf.WriteString("{torn\n")
	buf.Write(captureFill(t, journalRotateAt+10<<10))
	writeFile(t, f.m.journalPath(), buf.Bytes())
	require.NoError(t, f.m.rotateJournal())
	entries := journalOf(t, f.m)
	require.GreaterOrEqual(t, len(entries), 2)
	assert.Equal(t, "last", entries[0].ID)
	assert.Equal(t, phaseIntent, entries[0].Phase)
	assert.Equal(t, "last", entries[1].ID)
	assert.Equal(t, phaseDone, entries[1].Phase)
	for _, e := range entries[2:] {
		assert.Equal(t, opCapture, e.Op)
	}
	assert.NotContains(t, string(journalBytes(t, f.m)), "torn")
	sub, ok := f.m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "alice", sub)
	assert.True(t, strings.HasSuffix(string(journalBytes(t, f.m)), "\n"))
}

// TestRotationAfterAnIntentKeepsTheChangeBefore: the journal rotates right
// after the record that grew it, which may be the intent of the change in
// progress; the last completed change before it is kept, so that it still
// decides what the live path holds should that change fail.
func TestRotationAfterAnIntentKeepsTheChangeBefore(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	for _, e := range []JournalEntry{
		{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: "prev", Sub: "alice"},
		{Time: testNow, Op: opSwitch, Phase: phaseDone, ID: "prev", Sub: "alice"},
	} {
		line, err := encodeJournalLine(e)
		require.NoError(t, err)
		buf.Write(line)
	}
	buf.Write(captureFill(t, journalRotateAt+10<<10))
	line, err := encodeJournalLine(JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: "now", Sub: "bob", From: "alice"})
	require.NoError(t, err)
	buf.Write(line)
	writeFile(t, f.m.journalPath(), buf.Bytes())
	require.NoError(t, f.m.rotateJournal())
	entries := journalOf(t, f.m)
	require.GreaterOrEqual(t, len(entries), 3)
	assert.Equal(t, "prev", entries[0].ID)
	assert.Equal(t, "prev", entries[1].ID)
	assert.Equal(t, "now", entries[len(entries)-1].ID)

	// The change in progress fails: the one before decides.
	appendJournal(t, f.m, JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseFailed, ID: "now", Sub: "bob"})
	sub, ok := f.m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "alice", sub)
}

// TestJournalThatIsNoRegularFileRefusesTheChange: a symlink or a directory
// at the journal's name is never followed or written through, and the
// change it would announce is not made.
func TestJournalThatIsNoRegularFileRefusesTheChange(t *testing.T) {
	for _, kind := range []string{"symlink", "directory"} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t)
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			writeSlot(t, f.slot("alice"), fresh, "rt-alice")
			f.link(t, "alice")
			_, err := f.m.SwitchTo("alice", "first") // makes the private dir
			require.NoError(t, err)
			require.NoError(t, os.Remove(f.m.journalPath()))
			elsewhere := filepath.Join(t.TempDir(), "elsewhere")
			if kind == "symlink" {
				require.NoError(t, os.WriteFile(elsewhere, nil, 0o600))
				require.NoError(t, os.Symlink(elsewhere, f.m.journalPath()))
			} else {
				require.NoError(t, os.Mkdir(f.m.journalPath(), 0o700))
			}
			_, err = f.m.SwitchTo("bob", "r")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "is not a regular file")
			assert.Equal(t, f.m.symlinkTarget("alice"), f.readlink(t), "the live path is as it was")
			if kind == "symlink" {
				data, rerr := os.ReadFile(elsewhere)
				require.NoError(t, rerr)
				assert.Empty(t, data, "nothing written through the symlink")
			}
		})
	}
}
