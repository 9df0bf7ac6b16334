package credslots

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJournalPastTheReadersBoundIsRotatedFromItsTail(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err := f.m.SwitchTo("alice", "first")
	require.NoError(t, err)
	// Grown past 1 MiB by hand (another writer, an old version), ending
	// with a completed switch to alice.
	var big bytes.Buffer
	line, err := json.Marshal(JournalEntry{Time: testNow, Op: opRest, Phase: phaseDone, Sub: "erik", Reason: string(bytes.Repeat([]byte("x"), 900))})
	require.NoError(t, err)
	for big.Len() <= disk.MaxFileSize+4096 {
		big.Write(line)
		big.WriteByte('\n')
	}
	for _, e := range []JournalEntry{
		{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: "last", Sub: "alice"},
		{Time: testNow, Op: opSwitch, Phase: phaseDone, ID: "last", Sub: "alice"},
	} {
		l, err := json.Marshal(e)
		require.NoError(t, err)
		big.Write(l)
		big.WriteByte('\n')
	}
	f2 := f.m.journalPath()
	require.NoError(t, os.WriteFile(f2, append(bytes.Repeat([]byte("y"), 100), big.Bytes()...), 0o600))

	entries, err := f.m.Journal()
	require.NoError(t, err, "log reads the newest records, never too_large")
	require.NotEmpty(t, entries)
	last, ok := f.m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "alice", last)

	_, err = f.m.SwitchTo("bob", "after")
	require.NoError(t, err, "a change rotates the journal from its tail")
	fi, err := os.Stat(f2)
	require.NoError(t, err)
	assert.Less(t, fi.Size(), int64(journalRotateAt), "rotated")
	last, ok = f.m.LastActive()
	assert.True(t, ok)
	assert.Equal(t, "bob", last)
}

func TestJournalLineDropsTheHolderBeforeItIsTooLong(t *testing.T) {
	long := "/" + strings.Repeat("d", 2000)
	e := JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: "x", Sub: "bob",
		Holder: &LockHolder{PID: 1, ProcStart: "1", Locks: []HeldLock{{Path: long}, {Path: long}, {Path: long}}}}
	line, err := encodeJournalLine(e)
	require.NoError(t, err)
	assert.Less(t, len(line), journalMaxLine)
	assert.NotContains(t, string(line), "holder")
	short := e
	short.Holder = &LockHolder{PID: 1, ProcStart: "1", Locks: []HeldLock{{Path: "/d/.oauth_refresh.lock"}}}
	line, err = encodeJournalLine(short)
	require.NoError(t, err)
	assert.Contains(t, string(line), `"holder":{"pid":1`)
}
