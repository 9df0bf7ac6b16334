package clilock

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
		{`[1]`, false},
		{`null`, false},
		// Keys match exactly, as in JavaScript: a "PID" is no pid.
		{`{"PID":12,"pidDomain":"d","pidSpace":"s","lockBirthtimeMs":1}`, false},
		{`{"pid":12,"PidDomain":"d","pidSpace":"s","lockBirthtimeMs":1}`, false},
		// An optional field that is null: Claude Code's schema rejects it.
		{`{"pid":12,"procStart":null,"pidDomain":"d","pidSpace":"s","lockBirthtimeMs":1}`, false},
		{`{"pid":12,"pidDomain":"d","pidSpace":"s","lockBirthtimeMs":1,"legacyLockBirthtimeMs":null}`, false},
		{`{"pid":null,"pidDomain":"d","pidSpace":"s","lockBirthtimeMs":1}`, false},
		{`{"pid":"12","pidDomain":"d","pidSpace":"s","lockBirthtimeMs":1}`, false},
		// Fields it does not know are no matter.
		{`{"pid":12,"pidDomain":"d","pidSpace":"s","lockBirthtimeMs":1,"extra":[1,{"a":null}]}`, true},
	}
	for _, tc := range cases {
		rec, ok := ParseOwner([]byte(tc.doc))
		assert.Equal(t, tc.ok, ok, tc.doc)
		if ok {
			assert.Equal(t, 12, rec.PID)
		}
	}
}

func TestProcStatFields(t *testing.T) {
	fields, ok := ProcStatFields("123 (a (b) c) S 1 2 3")
	require.True(t, ok)
	assert.Equal(t, []string{"S", "1", "2", "3"}, fields, "the name may hold spaces and parentheses")
	fields, ok = ProcStatFields("1 (x) R  5")
	require.True(t, ok)
	assert.Equal(t, []string{"R", "", "5"}, fields, "empty fields kept, as split(\" \")")
	_, ok = ProcStatFields("no name")
	assert.False(t, ok)
}

func TestJudge(t *testing.T) {
	me, ok := Self()
	if !ok {
		t.Log("no /proc here: records are not judged")
		return
	}
	start := me.Start
	other := "0"
	cases := []struct {
		name string
		rec  Owner
		want Holder
	}{
		{"this process", Owner{PID: PID(), ProcStart: &start, PIDDomain: me.Domain, PIDSpace: me.Space}, HolderSelf},
		{"another pid namespace", Owner{PID: 1 << 22, PIDDomain: me.Domain, PIDSpace: "elsewhere#pid:[1]"}, HolderAlive},
		{"a dead pid", Owner{PID: 1<<22 - 1, PIDDomain: me.Domain, PIDSpace: me.Space}, HolderGone},
		{"this pid started at another time", Owner{PID: PID(), ProcStart: &other, PIDDomain: me.Domain, PIDSpace: me.Space}, HolderGone},
		{"pid 1", Owner{PID: 1, PIDDomain: me.Domain, PIDSpace: me.Space}, HolderUnknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == HolderGone && tc.rec.PID != PID() && ProcessExists(tc.rec.PID) {
				t.Log("that pid is in use here")
				return
			}
			assert.Equal(t, tc.want, tc.rec.Judge())
		})
	}
}

func TestWriteOwner(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Log("the record's fields come from /proc: Linux only")
		return
	}
	dir := t.TempDir()
	fsys := &countFS{}
	s := spec(dir, ".oauth_refresh.lock", time.Minute, 5*time.Second)
	refresh, err := take(t, fsys, s, time.Second)
	require.NoError(t, err)
	defer refresh.Release()
	legacy, err := take(t, fsys, spec(dir, "legacy.lock", time.Minute, 5*time.Second), time.Second)
	require.NoError(t, err)
	defer legacy.Release()
	bt, ok := refresh.Stat().BirthMs()
	if !ok {
		t.Log("no birth time on this file system: no record")
		return
	}
	path := OwnerPath(s.Path)
	fsys.ops()
	remove, err := WriteOwner(fsys, path, refresh, legacy)
	require.NoError(t, err)
	require.NotNil(t, remove)
	assert.Equal(t, []string{"createnew .oauth_refresh.lock.owner"}, fsys.ops(), "one exclusive create, no look first")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	var got map[string]any
	require.NoError(t, json.Unmarshal(data, &got))
	me, _ := Self()
	lbt, _ := legacy.Stat().BirthMs()
	assert.Equal(t, map[string]any{"pid": float64(os.Getpid()), "procStart": me.Start, "pidDomain": me.Domain,
		"pidSpace": me.Space, "lockBirthtimeMs": bt, "legacyLockBirthtimeMs": lbt}, got)
	rec, ok := ParseOwner(data)
	require.True(t, ok)
	assert.True(t, rec.Mine(bt))

	// A record there already is never rewritten.
	again, err := WriteOwner(fsys, path, refresh, legacy)
	require.NoError(t, err)
	assert.Nil(t, again)
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, data, after)

	fsys.ops()
	remove()
	assert.Equal(t, []string{"read .oauth_refresh.lock.owner", "remove .oauth_refresh.lock.owner"}, fsys.ops(), "read back, found ours, removed")
	assert.NoFileExists(t, path)
}

func TestOwnerRemovedOnlyIfStillOurs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Log("the record's fields come from /proc: Linux only")
		return
	}
	dir := t.TempDir()
	fsys := &countFS{}
	s := spec(dir, ".oauth_refresh.lock", time.Hour, time.Hour)
	refresh, err := take(t, fsys, s, time.Second)
	require.NoError(t, err)
	defer refresh.Release()
	if _, ok := refresh.Stat().BirthMs(); !ok {
		t.Log("no birth time on this file system: no record")
		return
	}
	path := OwnerPath(s.Path)
	remove, err := WriteOwner(fsys, path, refresh, nil)
	require.NoError(t, err)
	require.NotNil(t, remove)
	theirs := []byte(`{"pid":1,"pidDomain":"x","pidSpace":"y","lockBirthtimeMs":5}`)
	require.NoError(t, os.WriteFile(path, theirs, 0o600))
	remove()
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, theirs, got, "a record that is not ours is never removed")
}

func TestALiveOwnerIsNeverTakenOver(t *testing.T) {
	me, ok := Self()
	if !ok {
		t.Log("no /proc here")
		return
	}
	dir := t.TempDir()
	s := spec(dir, ".oauth_refresh.lock", time.Millisecond, time.Second)
	s.Owner = OwnerPath(s.Path)
	require.NoError(t, os.Mkdir(s.Path, 0o700))
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(s.Path, old, old))
	// A record naming a live process of this pid space (our parent).
	parent := os.Getppid()
	pstart, _, _ := ProcStat(parent)
	rec, err := json.Marshal(Owner{PID: parent, ProcStart: &pstart, PIDDomain: me.Domain, PIDSpace: me.Space, LockBirthtimeMs: 1})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(s.Owner, rec, 0o600))
	begin := time.Now()
	_, _, err = Take(context.Background(), &countFS{}, s, begin, begin.Add(50*time.Millisecond), nil)
	require.ErrorIs(t, err, ErrTimeout)
	assert.True(t, strings.Contains(err.Error(), "which is alive"), err.Error())
	assert.DirExists(t, s.Path)
	assert.FileExists(t, filepath.Join(dir, ".oauth_refresh.lock.owner"))
}

// TestOwnerAppendJSONIsEncodingJSON: the owner record is written byte for
// byte as encoding/json marshals it, whatever its fields hold.
func TestOwnerAppendJSONIsEncodingJSON(t *testing.T) {
	str := func(s string) *string { return &s }
	num := func(f float64) *float64 { return &f }
	for _, r := range []Owner{
		{PID: 4242, ProcStart: str("123456"), PIDDomain: "linux:abc:pid:[4026531836]", PIDSpace: "host#pid:[4026531836]",
			LockBirthtimeMs: 1767225600123.456, LegacyLockBirthtimeMs: num(1767225600124)},
		{PID: 1, PIDDomain: "", PIDSpace: "<&>\"\\\n\u2028\xff", LockBirthtimeMs: 1e21},
		{PID: -7, ProcStart: str(""), PIDDomain: "d", PIDSpace: "s", LockBirthtimeMs: 1e-7, LegacyLockBirthtimeMs: num(5e-324)},
		{PID: 2, PIDDomain: "d", PIDSpace: "s", LockBirthtimeMs: 0.000001, LegacyLockBirthtimeMs: num(123456789012345678)},
	} {
		want, err := json.Marshal(r)
		require.NoError(t, err)
		got, ok := r.AppendJSON(nil)
		require.True(t, ok)
		assert.Equal(t, string(want), string(got))
		back, ok := ParseOwner(got)
		if r.LockBirthtimeMs > 0 && len(r.PIDSpace) <= 512 {
			assert.True(t, ok, "%s", got)
			assert.Equal(t, r.PID, back.PID)
		}
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1)} {
		_, err := json.Marshal(Owner{LockBirthtimeMs: bad})
		require.Error(t, err)
		_, ok := Owner{LockBirthtimeMs: bad}.AppendJSON(nil)
		assert.False(t, ok, "%v: encoding/json refuses it too", bad)
	}
}
