package credslots

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// healthyFixture has three fresh, captured slots and the live symlink on bob.
func healthyFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	require.NoError(t, os.Chmod(f.dir, 0o700))
	for _, sub := range []string{"bob", "alice", "erik"} {
		writeSlot(t, f.slot(sub), fresh, "rt-"+sub)
		_, err := f.m.CaptureSlotFingerprint(sub)
		require.NoError(t, err)
	}
	f.link(t, "bob")
	return f
}

func TestStatusHealthy(t *testing.T) {
	f := healthyFixture(t)
	st, err := f.m.Status()
	require.NoError(t, err)
	assert.True(t, st.Healthy)
	assert.Empty(t, st.Problems)
	assert.NotNil(t, st.Problems)
	assert.Equal(t, "claude", st.Format)
	assert.Equal(t, testNow, st.CheckedAt)
	assert.Equal(t, LiveStatus{Path: f.m.LivePath(), Kind: "symlink", Target: ".credentials.json.bob"}, st.Live)
	assert.Equal(t, "bob", st.Active)
	require.NotNil(t, st.Drift)
	assert.False(t, st.Drift.Drift)
	require.Len(t, st.Slots, 3)
	bob := st.Slots[0]
	assert.Equal(t, "bob", bob.Sub)
	assert.True(t, bob.Exists)
	assert.True(t, bob.Active)
	assert.True(t, bob.Fresh)
	assert.Equal(t, "valid until 2026-01-01T20:00:00Z", bob.FreshReason)
	require.NotNil(t, bob.Expiry)
	assert.True(t, bob.Expiry.Equal(fresh))
	assert.Equal(t, "0600", bob.Mode)
	assert.Equal(t, "fingerprint matches", bob.Identity.Reason)
	assert.False(t, st.Slots[1].Active)
}

func TestStatusProblems(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, f *fixture)
		want  string
		kind  string
	}{
		{"live missing", func(t *testing.T, f *fixture) { require.NoError(t, os.Remove(f.m.LivePath())) }, "live path", "missing"},
		{"drift", func(t *testing.T, f *fixture) { f.refresh(t, claudeDoc(fresh, "rt-new")) }, "matches no slot", "file"},
		{"broken link", func(t *testing.T, f *fixture) { require.NoError(t, os.Remove(f.slot("bob"))) }, "broken", "broken-symlink"},
		{"active slot not fresh", func(t *testing.T, f *fixture) {
			writeSlot(t, f.slot("bob"), stale, "rt-bob")
		}, "active slot bob is not fresh: expired 90m ago", "symlink"},
		{"identity drift", func(t *testing.T, f *fixture) {
			writeSlot(t, f.slot("alice"), fresh, "rt-other")
		}, "slot alice: identity drift: refresh token changed", "symlink"},
		{"no fresh slot", func(t *testing.T, f *fixture) {
			for _, sub := range []string{"bob", "alice", "erik"} {
				writeSlot(t, f.slot(sub), stale, "rt-"+sub)
			}
		}, "no fresh slot", "symlink"},
		{"slot readable by others", func(t *testing.T, f *fixture) {
			require.NoError(t, os.Chmod(f.slot("erik"), 0o644))
		}, "slot erik .credentials.json.erik is readable by group or others (mode 0644)", "symlink"},
		{"live file readable by group", func(t *testing.T, f *fixture) {
			data, err := os.ReadFile(f.slot("bob"))
			require.NoError(t, err)
			require.NoError(t, os.Remove(f.m.LivePath()))
			require.NoError(t, os.WriteFile(f.m.LivePath(), data, 0o640))
			require.NoError(t, os.Chmod(f.m.LivePath(), 0o640))
		}, "live file .credentials.json is readable by group or others (mode 0640)", "file"},
		{"dir writable by others", func(t *testing.T, f *fixture) {
			require.NoError(t, os.Chmod(f.dir, 0o777))
		}, "is writable by group or others (mode 0777)", "symlink"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := healthyFixture(t)
			tt.setup(t, f)
			st, err := f.m.Status()
			require.NoError(t, err)
			assert.False(t, st.Healthy)
			assert.Equal(t, tt.kind, st.Live.Kind)
			assert.True(t, containsSubstring(st.Problems, tt.want), "problems %q lack %q", st.Problems, tt.want)
		})
	}
}

func containsSubstring(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestStatusUnreadableLiveIsAProblemNotAnError(t *testing.T) {
	f := healthyFixture(t)
	require.NoError(t, os.Remove(f.m.LivePath()))
	require.NoError(t, os.Mkdir(f.m.LivePath(), 0o700))
	st, err := f.m.Status()
	require.NoError(t, err)
	assert.Equal(t, "other", st.Live.Kind)
	assert.True(t, containsSubstring(st.Problems, "unreadable"))

	g, err := New(WithCredsDir(f.dir+"/absent"), WithSubscriptions("bob"))
	require.NoError(t, err)
	_, err = g.Status()
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestStatusJSONIsStableSnakeCase(t *testing.T) {
	f := healthyFixture(t)
	writeSlot(t, f.slot("erik"), testNow.Add(90*time.Minute+500*time.Millisecond), "rt-erik")
	_, err := f.m.CaptureSlotFingerprint("erik")
	require.NoError(t, err)
	st, err := f.m.Status()
	require.NoError(t, err)
	raw, err := json.Marshal(st)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	for _, key := range []string{"creds_dir", "format", "checked_at", "live", "active", "drift", "slots", "problems", "healthy"} {
		assert.Contains(t, doc, key)
	}
	assert.Equal(t, "2026-01-01T12:00:00Z", doc["checked_at"])
	slot := doc["slots"].([]any)[2].(map[string]any)
	for _, key := range []string{"sub", "path", "exists", "expiry", "fresh", "fresh_reason", "identity", "mode", "active"} {
		assert.Contains(t, slot, key)
	}
	assert.Equal(t, "2026-01-01T13:30:00.5Z", slot["expiry"])
	drift := doc["drift"].(map[string]any)
	for _, key := range []string{"drift", "matching_slot", "live_hash", "slot_hashes"} {
		assert.Contains(t, drift, key)
	}
	again, err := json.Marshal(st)
	require.NoError(t, err)
	assert.Equal(t, raw, again, "stable")
	assert.NotContains(t, string(raw), "rt-", "no token material")
}

// TestExportedStructsHaveSnakeCaseJSONTags guards every exported struct.
func TestExportedStructsHaveSnakeCaseJSONTags(t *testing.T) {
	for _, v := range []any{Status{}, LiveStatus{}, SlotStatus{}, DriftInfo{}, IdentityDriftInfo{}, SwitchResult{}} {
		typ := reflect.TypeOf(v)
		for i := 0; i < typ.NumField(); i++ {
			field := typ.Field(i)
			tag := strings.Split(field.Tag.Get("json"), ",")[0]
			assert.NotEmpty(t, tag, "%s.%s has no json tag", typ.Name(), field.Name)
			assert.Equal(t, strings.ToLower(tag), tag, "%s.%s", typ.Name(), field.Name)
			assert.NotContains(t, tag, "-")
		}
	}
}

// manySlotsFixture has n subs s00..s(n-1), each slot captured, and the live
// symlink on s00.
func manySlotsFixture(t *testing.T, n int, opts ...Option) *fixture {
	t.Helper()
	subs := make([]string, n)
	for i := range subs {
		subs[i] = fmt.Sprintf("s%02d", i)
	}
	f := newFixture(t, append([]Option{WithSubscriptions(subs...)}, opts...)...)
	require.NoError(t, os.Chmod(f.dir, 0o700))
	for _, sub := range subs {
		writeSlot(t, f.slot(sub), fresh, "rt-"+sub)
		_, err := f.m.CaptureSlotFingerprint(sub)
		require.NoError(t, err)
	}
	f.link(t, subs[0])
	return f
}

// firstWaitsForLast is a fixture of parallelReads slots whose first slot's
// read waits (5 s at most) for the last sidecar's read, on two processors:
// a Status that shares its reads gets past it at once, one reading in turn
// only at the timeout. atLast runs at the last sidecar's read, once it is
// let through; waited says whether the first read saw it.
func firstWaitsForLast(t *testing.T, atLast func()) (f *fixture, waited func() bool) {
	t.Helper()
	procs := runtime.GOMAXPROCS(2)
	t.Cleanup(func() { runtime.GOMAXPROCS(procs) })
	ffs := &faultFS{inner: disk.OS{}, failAt: -1}
	f = manySlotsFixture(t, parallelReads, withFS(ffs))
	first, last := f.slot("s00"), f.m.prints[fmt.Sprintf("s%02d", parallelReads-1)]
	lastRead := make(chan struct{})
	var once, firstRead sync.Once
	saw := make(chan bool, 1)
	ffs.before = func(op, name string) {
		switch {
		case op == "read" && name == last:
			once.Do(func() { close(lastRead) })
			atLast()
		case op == "read" && name == first:
			firstRead.Do(func() {
				select {
				case <-lastRead:
					saw <- true
				case <-time.After(5 * time.Second):
					saw <- false
				}
			})
		}
	}
	return f, func() bool {
		select {
		case ok := <-saw:
			return ok
		default:
			return false // the first slot was not read
		}
	}
}

// TestStatusSharesItsReads: from parallelReads slots on, the slots' and the
// sidecars' reads are shared with a second goroutine. The first slot's read
// here waits for the last sidecar's, which read in turn would come only
// after it.
func TestStatusSharesItsReads(t *testing.T) {
	f, waited := firstWaitsForLast(t, func() {})
	st, err := f.m.Status()
	require.NoError(t, err)
	assert.True(t, st.Healthy, "%v", st.Problems)
	assert.True(t, waited(), "the last sidecar was read while the first slot's read waited")
}

// TestStatusRaisesASharedReadsPanicOnItsCaller: a panic in a read made on
// another goroutine reaches Status's caller, as when it reads alone (a
// server that recovers per request keeps running). The first slot's read
// waits here until the last sidecar's read has panicked, which so happens
// on the other goroutine.
func TestStatusRaisesASharedReadsPanicOnItsCaller(t *testing.T) {
	f, waited := firstWaitsForLast(t, func() { panic("a reader's bug") })
	assert.PanicsWithValue(t, "a reader's bug", func() { _, _ = f.m.Status() })
	assert.True(t, waited(), "the panic was on the other goroutine")
}

// TestStatusSharedReadsAgreeWithReadsInTurn: Status of many slots in every
// state reads the same with its reads shared as read in turn, on one
// processor.
func TestStatusSharedReadsAgreeWithReadsInTurn(t *testing.T) {
	f := manySlotsFixture(t, 3*parallelReads)
	writeSlot(t, f.slot("s03"), stale, "rt-s03")
	writeSlot(t, f.slot("s07"), fresh, "rt-other")
	require.NoError(t, os.Remove(f.slot("s11")))
	require.NoError(t, os.Remove(f.m.prints["s12"]))
	require.NoError(t, os.Remove(f.m.prints["s13"]))
	require.NoError(t, os.Mkdir(f.m.prints["s13"], 0o700))
	require.NoError(t, os.Chmod(f.slot("s20"), 0o644))
	require.NoError(t, os.Remove(f.slot("s21")))
	require.NoError(t, os.Mkdir(f.slot("s21"), 0o700))
	writeFile(t, f.slot("s30"), []byte("not json"))
	f.refresh(t, claudeDoc(fresh, "rt-new"))

	procs := runtime.GOMAXPROCS(4)
	defer runtime.GOMAXPROCS(procs)
	shared, err := f.m.Status()
	require.NoError(t, err)
	runtime.GOMAXPROCS(1)
	inTurn, err := f.m.Status()
	require.NoError(t, err)
	assert.Equal(t, inTurn, shared)
	assert.False(t, shared.Healthy)
	for _, want := range []string{"slot s07: identity drift", "slot s11: identity drift", "slot s13: fingerprint unreadable",
		"s20 .credentials.json.s20 is readable", "slot s21: cannot read", "slot s30 (.credentials.json.s30) is not", "matches no slot"} {
		assert.Contains(t, strings.Join(shared.Problems, "\n"), want)
	}
	assert.False(t, shared.Slots[3].Fresh)
	assert.Contains(t, shared.Slots[12].Identity.Reason, "no fingerprint stored yet")
	assert.Equal(t, "fingerprint matches", shared.Slots[len(shared.Slots)-1].Identity.Reason)
}

// TestStatusNamesSlotsHoldingOneLogin: two slots with one refresh token lose
// it on the first refresh through either, so Status lists them; the slot
// whose sidecar records the login is the original, the others its copies,
// whose identity drift no longer says to capture them (capture refuses).
func TestStatusNamesSlotsHoldingOneLogin(t *testing.T) {
	oneLogin := func(subs string) string {
		return "slots " + subs + " hold one login (the same refresh token): a refresh through one would end the others; find whose login it is (credslots backups lists each slot's earlier ones), then log in to each other sub's own account and capture it"
	}
	copySidecar := func(t *testing.T, f *fixture, from, to string) {
		data, err := os.ReadFile(f.m.prints[from])
		require.NoError(t, err)
		writeFile(t, f.m.prints[to], data)
	}
	for _, tc := range []struct {
		name  string
		opts  []Option
		subs  []string
		setup func(t *testing.T, f *fixture)
		want  []string // the problems about copies, in order
	}{
		{"a copy over a captured slot", nil, nil, func(t *testing.T, f *fixture) {
			writeSlot(t, f.slot("erik"), fresh, "rt-bob")
		}, []string{copiedLogin("erik", "bob")}},
		{"two copies of one slot", nil, nil, func(t *testing.T, f *fixture) {
			writeSlot(t, f.slot("alice"), fresh, "rt-bob")
			writeSlot(t, f.slot("erik"), fresh, "rt-bob")
		}, []string{copiedLogin("alice", "bob"), copiedLogin("erik", "bob")}},
		{"no sidecar says whose", nil, nil, func(t *testing.T, f *fixture) {
			for _, sub := range []string{"alice", "erik"} {
				require.NoError(t, os.Remove(f.m.prints[sub]))
				writeSlot(t, f.slot(sub), fresh, "rt-shared")
			}
		}, []string{oneLogin("alice, erik")}},
		{"two sidecars say it is theirs", nil, nil, func(t *testing.T, f *fixture) {
			writeSlot(t, f.slot("alice"), fresh, "rt-bob")
			copySidecar(t, f, "bob", "alice")
		}, []string{oneLogin("bob, alice")}},
		{"two groups, in the order of their first slot", nil, []string{"a", "b", "c", "d"}, func(t *testing.T, f *fixture) {
			writeSlot(t, f.slot("d"), fresh, "rt-a")
			writeSlot(t, f.slot("c"), fresh, "rt-b")
		}, []string{copiedLogin("d", "a"), copiedLogin("c", "b")}},
		{"codex: logins of two accounts", []Option{WithFormat(CodexCLI)}, nil, func(t *testing.T, f *fixture) {
			writeFile(t, f.slot("alice"), codexLogin(fresh, "acct-alice", "rt-alice-2"))
		}, nil},
		{"codex: one refresh token in two slots", []Option{WithFormat(CodexCLI)}, nil, func(t *testing.T, f *fixture) {
			writeFile(t, f.slot("erik"), codexLogin(fresh, "acct-bob", "rt-bob"))
		}, []string{copiedLogin("erik", "bob")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subs := tc.subs
			if subs == nil {
				subs = []string{"bob", "alice", "erik"}
			}
			f := newFixture(t, append([]Option{WithSubscriptions(subs...)}, tc.opts...)...)
			require.NoError(t, os.Chmod(f.dir, 0o700))
			for _, sub := range subs {
				if tc.opts != nil {
					writeFile(t, f.slot(sub), codexLogin(fresh, "acct-"+sub, "rt-"+sub))
				} else {
					writeSlot(t, f.slot(sub), fresh, "rt-"+sub)
				}
				_, err := f.m.CaptureSlotFingerprint(sub)
				require.NoError(t, err)
			}
			f.link(t, subs[0])
			st, err := f.m.Status()
			require.NoError(t, err)
			require.True(t, st.Healthy, "%v", st.Problems)
			tc.setup(t, f)
			st, err = f.m.Status()
			require.NoError(t, err)
			var copies []string
			for _, p := range st.Problems {
				if strings.Contains(p, "same login") || strings.Contains(p, "one login") {
					copies = append(copies, p)
				}
				assert.NotContains(t, p, "then credslots capture", "a copy is not to be captured: %v", st.Problems)
			}
			assert.Equal(t, tc.want, copies, "all problems: %v", st.Problems)
			assert.Equal(t, tc.want == nil, st.Healthy, "%v", st.Problems)
		})
	}
}

// TestHealReadsManySlotsShared: a heal among enough slots that its reading
// of them is shared heals as one among few does.
func TestHealReadsManySlotsShared(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	f := manySlotsFixture(t, 4*parallelReads)
	refreshed := claudeDoc(fresh.Add(time.Hour), "rt-s00-2")
	f.refresh(t, refreshed)
	res, err := f.m.HealDriftTo("s00")
	require.NoError(t, err)
	assert.True(t, res.OK)
	got, err := os.ReadFile(f.slot("s00"))
	require.NoError(t, err)
	assert.Equal(t, refreshed, got)
	assert.Equal(t, f.m.symlinkTarget("s00"), f.readlink(t))
	writeSlot(t, f.slot("s40"), fresh, "rt-s00-2") // a copy of the healed login
	st, err := f.m.Status()
	require.NoError(t, err)
	assert.Contains(t, st.Problems, copiedLogin("s40", "s00"))
}
