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

func TestOwnerRecordIsReadAsClaudeCodeValidatesIt(t *testing.T) {
	cases := []struct {
		doc string
		ok  bool
	}{
		{`{"pid":12,"procStart":"99","pidDomain":"linux:m:pid:[1]","pidSpace":"h#pid:[1]","lockBirthtimeMs":1796125228609.7056,"legacyLockBirthtimeMs":1.5}`, true},
		{`{"pid":12,"pidDomain":"d","pidSpace":"s","lockBirthtimeMs":1}`, true},
		{`{"pid":12.5,"pidDomain":"d","pidSpace":"s","lockBirthtimeMs":1}`, false},
		{`{"pidDomain":"d","pidSpace":"s","lockBirthtimeMs":1}`, false},
		{`{"pid":12,"pidSpace":"s","lockBirthtimeMs":1}`, false},
		{`{"pid":12,"pidDomain":"d","pidSpace":"s","lockBirthtimeMs":0}`, false},
		{`{"pid":12,"pidDomain":"d","pidSpace":"s","lockBirthtimeMs":1,"legacyLockBirthtimeMs":-1}`, false},
		{`{"pid":12,"procStart":"` + strings.Repeat("9", 65) + `","pidDomain":"d","pidSpace":"s","lockBirthtimeMs":1}`, false},
		{`{"pid":12,"pidDomain":"` + strings.Repeat("d", 513) + `","pidSpace":"s","lockBirthtimeMs":1}`, false},
		{`not json`, false},
	}
	for _, tc := range cases {
		rec, ok := parseOwnerRecord([]byte(tc.doc))
		assert.Equal(t, tc.ok, ok, tc.doc)
		if ok {
			assert.Equal(t, 12, rec.PID)
		}
	}
}
