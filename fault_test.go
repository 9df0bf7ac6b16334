package credslots

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refreshTokens collects every Claude refresh token held by any regular file
// under dir, so tests can prove that a failed operation lost none.
func refreshTokens(t testing.TB, dir string) map[string]bool {
	t.Helper()
	tokens := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if tok := refreshTokenOf(data); tok != "" {
			tokens[tok] = true
		}
		return nil
	})
	require.NoError(t, err)
	return tokens
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// mutationCase is one mutating call over a prepared creds dir.
type mutationCase struct {
	name  string
	setup func(t *testing.T, f *fixture)
	run   func(m *Manager) error
	// after is the sub the live path must point at once the call succeeded.
	after string
}

func mutationCases() []mutationCase {
	twoSlots := func(t *testing.T, f *fixture) {
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	}
	return []mutationCase{
		{
			name: "switch between slots",
			setup: func(t *testing.T, f *fixture) {
				twoSlots(t, f)
				f.link(t, "alice")
			},
			run:   func(m *Manager) error { _, err := m.SwitchTo("bob", "rotate"); return err },
			after: "bob",
		},
		{
			name:  "switch with no live path",
			setup: twoSlots,
			run:   func(m *Manager) error { _, err := m.SwitchTo("bob", "first"); return err },
			after: "bob",
		},
		{
			name: "forced switch away from a drifted live file",
			setup: func(t *testing.T, f *fixture) {
				twoSlots(t, f)
				writeFile(t, f.m.LivePath(), claudeDoc(fresh, "rt-live-only"))
			},
			run:   func(m *Manager) error { _, err := m.SwitchTo("bob", "operator", Force()); return err },
			after: "bob",
		},
		{
			name: "heal after a refresh",
			setup: func(t *testing.T, f *fixture) {
				twoSlots(t, f)
				f.link(t, "bob")
				f.refresh(t, claudeDoc(fresh, "rt-bob-2"))
			},
			run:   func(m *Manager) error { _, err := m.HealDriftTo("bob"); return err },
			after: "bob",
		},
		{
			name: "capture",
			setup: func(t *testing.T, f *fixture) {
				twoSlots(t, f)
				f.link(t, "alice")
			},
			run:   func(m *Manager) error { _, err := m.CaptureSlotFingerprint("bob"); return err },
			after: "alice",
		},
	}
}

// TestFaultAtEveryStep fails the k-th file-system operation of each mutation,
// for every k, and checks the invariants after each.
func TestFaultAtEveryStep(t *testing.T) {
	for _, noExchange := range []bool{false, true} {
		mode := "exchange"
		if noExchange {
			mode = "fallback"
		}
		t.Run(mode, func(t *testing.T) { faultAtEveryStep(t, noExchange) })
	}
}

func faultAtEveryStep(t *testing.T, noExchange bool) {
	for _, mc := range mutationCases() {
		t.Run(mc.name, func(t *testing.T) {
			// A clean run counts the operations.
			// The CLI locks have their own fault test: a lock directory
			// left by a failed removal blocks for its stale time, as it
			// does for the CLI.
			counter := &faultFS{inner: disk.OS{}, failAt: -1, noExchange: noExchange}
			f := newFixture(t, withFS(counter), WithCLILocks(false))
			mc.setup(t, f)
			require.NoError(t, mc.run(f.m))
			total := counter.count()
			require.Greater(t, total, 3)
			t.Logf("%d operations: %v", total, counter.log)

			for k := 1; k <= total; k++ {
				ffs := &faultFS{inner: disk.OS{}, failAt: k, noExchange: noExchange}
				f := newFixture(t, withFS(ffs), WithCLILocks(false))
				mc.setup(t, f)
				before := refreshTokens(t, f.dir)
				_, lerr := os.Lstat(f.m.LivePath())
				liveExisted := lerr == nil

				err := mc.run(f.m)
				failed := ffs.log[k-1]

				if err != nil {
					// The injected error is returned, or the check that met
					// it refused (an unreadable slot is not fresh).
					assert.True(t, errors.Is(err, errInjected) || isRefusal(err),
						"k=%d (%s): got %v", k, failed, err)
				}
				if liveExisted {
					_, lerr := os.Lstat(f.m.LivePath())
					assert.NoError(t, lerr, "k=%d (%s): the live path still exists", k, failed)
				}
				if err == nil {
					target := f.readlink(t)
					if mc.after != "" && target != "" {
						assert.Equal(t, f.m.symlinkTarget(mc.after), target, "k=%d (%s)", k, failed)
					}
				}
				after := refreshTokens(t, f.dir)
				for tok := range before {
					assert.True(t, after[tok], "k=%d (%s): refresh token %s lost (have %v)", k, failed, tok, keys(after))
				}
				assert.Empty(t, tempLeftovers(t, f.dir), "k=%d (%s)", k, failed)

				// The next operation, without faults, succeeds.
				clean, err := New(WithCredsDir(f.dir), WithSubscriptions("bob", "alice", "erik"), WithClock(fixedClock), WithCLILocks(false))
				require.NoError(t, err)
				_, err = clean.SwitchTo("bob", "retry", Force())
				assert.NoError(t, err, "k=%d (%s): the next switch succeeds", k, failed)
			}
		})
	}
}

func TestSwitchFailingExchangeLeavesLiveUnchanged(t *testing.T) {
	ffs := &faultFS{inner: disk.OS{}, failAt: 1, ops: map[string]bool{"exchange": true, "rename": true}}
	f := newFixture(t, withFS(ffs))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "alice")

	res, err := f.m.SwitchTo("bob", "rotate")
	require.ErrorIs(t, err, errInjected)
	assert.False(t, res.OK)
	assert.NotEmpty(t, res.Reason)
	assert.Equal(t, ".credentials.json.alice", f.readlink(t))
	assert.Empty(t, f.hook.get())
	assert.Empty(t, tempLeftovers(t, f.dir))
}

func TestForcedSwitchFailingBackupWriteKeepsLive(t *testing.T) {
	ffs := &faultFS{inner: disk.OS{}, failAt: 1, ops: map[string]bool{"write": true}}
	f := newFixture(t, withFS(ffs))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	live := claudeDoc(fresh, "rt-live-only")
	writeFile(t, f.m.LivePath(), live)

	_, err := f.m.SwitchTo("bob", "operator", Force())
	require.ErrorIs(t, err, errInjected)
	got, err := os.ReadFile(f.m.LivePath())
	require.NoError(t, err)
	assert.Equal(t, live, got)
	assert.Equal(t, "", f.readlink(t), "still a regular file")
	assert.Empty(t, tempLeftovers(t, f.dir))
}

func TestHealFailingSymlinkRestoreKeepsLiveFile(t *testing.T) {
	ffs := &faultFS{inner: disk.OS{}, failAt: 1, ops: map[string]bool{"exchange": true}}
	f := newFixture(t, withFS(ffs))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	f.link(t, "bob")
	refreshed := claudeDoc(fresh, "rt-bob-2")
	f.refresh(t, refreshed)

	res, err := f.m.HealDriftTo("bob")
	require.ErrorIs(t, err, errInjected)
	assert.False(t, res.OK)
	got, err := os.ReadFile(f.m.LivePath())
	require.NoError(t, err)
	assert.Equal(t, refreshed, got, "the live file is unchanged")
	assert.Equal(t, "", f.readlink(t))
	assert.Empty(t, f.hook.get())
	assert.Empty(t, tempLeftovers(t, f.dir))
}

func TestHealFailingSlotWriteKeepsEverything(t *testing.T) {
	for _, op := range []string{"write", "rename", "sync", "create"} {
		t.Run(op, func(t *testing.T) {
			// The second such operation is the slot's own write (the first is its backup).
			ffs := &faultFS{inner: disk.OS{}, failAt: 2, ops: map[string]bool{op: true}}
			f := newFixture(t, withFS(ffs))
			old := writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			writeFile(t, f.m.LivePath(), claudeDoc(fresh, "rt-bob-2"))

			_, err := f.m.HealDriftTo("bob")
			require.ErrorIs(t, err, errInjected)
			got, err := os.ReadFile(f.slot("bob"))
			require.NoError(t, err)
			assert.Equal(t, old, got, "slot unchanged")
			assert.Equal(t, "", f.readlink(t))
			assert.Empty(t, tempLeftovers(t, f.dir))
		})
	}
}

func TestCaptureFailingRenameReturnsError(t *testing.T) {
	for _, op := range []string{"rename", "write", "sync", "close", "create"} {
		t.Run(op, func(t *testing.T) {
			ffs := &faultFS{inner: disk.OS{}, failAt: 1, ops: map[string]bool{op: true}}
			f := newFixture(t, withFS(ffs))
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			fp, err := f.m.CaptureSlotFingerprint("bob")
			require.ErrorIs(t, err, errInjected)
			assert.Empty(t, fp)
			assert.NoFileExists(t, f.m.FingerprintPath("bob"))
			assert.Empty(t, tempLeftovers(t, f.dir))
		})
	}
}

func TestFailedCaptureAfterChangeIsVisible(t *testing.T) {
	tests := []struct {
		name string
		run  func(f *fixture) (SwitchResult, error)
		// ops and failAt pick the sidecar's rename.
		failAt int
	}{
		{"switch", func(f *fixture) (SwitchResult, error) { return f.m.SwitchTo("bob", "rotate") }, 1},
		{"heal", func(f *fixture) (SwitchResult, error) { return f.m.HealDriftTo("bob") }, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ffs := &faultFS{inner: disk.OS{}, failAt: tt.failAt, ops: map[string]bool{"rename": true}}
			f := newFixture(t, withFS(ffs))
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			writeFile(t, f.m.LivePath(), claudeDoc(fresh, "rt-bob-2"))
			if tt.name == "switch" {
				f.link(t, "bob")
			}
			res, err := tt.run(f)
			require.NoError(t, err)
			assert.True(t, res.OK)
			require.Len(t, ffs.log, tt.failAt)
			assert.Contains(t, ffs.log[tt.failAt-1], "fingerprint.json", "the failed rename was the sidecar's")
			assert.Len(t, f.hook.get(), 1, "on-switch still runs")
			assert.Contains(t, f.logs.String(), "level=WARN")
			assert.Contains(t, f.logs.String(), "fingerprint capture failed")
			assert.NoFileExists(t, f.m.FingerprintPath("bob"))
			assert.Empty(t, tempLeftovers(t, f.dir))
			// Not only logged: the result and Status say so.
			assert.Contains(t, res.Reason, "fingerprint capture failed")
			assert.Contains(t, res.Reason, "run capture bob")
			st, err := f.m.Status()
			require.NoError(t, err)
			assert.Contains(t, strings.Join(st.Problems, "\n"), "slot bob: its fingerprint capture after the last change failed")
			assert.False(t, st.Healthy)
			// A capture that succeeds clears it.
			_, err = f.m.CaptureSlotFingerprint("bob")
			require.NoError(t, err)
			st, err = f.m.Status()
			require.NoError(t, err)
			assert.NotContains(t, strings.Join(st.Problems, "\n"), "fingerprint capture after the last change failed")
		})
	}
}

func TestLockFailureIsReturned(t *testing.T) {
	ffs := &faultFS{inner: disk.OS{}, failAt: 1, ops: map[string]bool{"lock": true}}
	f := newFixture(t, withFS(ffs))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	res, err := f.m.SwitchTo("bob", "r")
	require.ErrorIs(t, err, errInjected)
	assert.False(t, res.OK)
	assert.False(t, errors.Is(err, ErrLockTimeout))
	assert.Equal(t, "", f.readlink(t))
}

// isRefusal reports whether err wraps one of the refusal sentinels. A lease
// lock that cannot be probed counts as held, so a fault there is refused
// with ErrLeased.
func isRefusal(err error) bool {
	for _, s := range []error{ErrUnknownSubscription, ErrDeferred, ErrSlotMissing, ErrNotFresh,
		ErrNoDrift, ErrUnhealable, ErrIdentityDrift, ErrLiveDrifted, ErrLiveChanged, ErrLeased} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// TestDurabilityOrder checks, from the operations each mutation performs,
// that every written file is fsynced before its rename and that the
// directory is fsynced after every rename, exchange and symlink placement.
func TestDurabilityOrder(t *testing.T) {
	for _, mc := range mutationCases() {
		t.Run(mc.name, func(t *testing.T) {
			rec := &faultFS{inner: disk.OS{}, failAt: -1}
			f := newFixture(t, withFS(rec))
			mc.setup(t, f)
			require.NoError(t, mc.run(f.m))
			ops := make([]string, len(rec.log))
			for i, entry := range rec.log {
				ops[i], _, _ = strings.Cut(entry, " ")
			}
			// syncedBeforeNextChange: a directory sync follows op i before
			// anything else is created, written or renamed.
			syncedBeforeNextChange := func(i int) bool {
				for _, next := range ops[i+1:] {
					switch next {
					case "syncdir":
						return true
					case "create", "write", "symlink", "rename", "exchange", "rename-noreplace":
						return false
					}
				}
				return false
			}
			changes := 0
			for i, op := range ops {
				switch op {
				case "rename":
					changes++
					require.GreaterOrEqual(t, i, 3, "%v", ops)
					assert.Equal(t, []string{"write", "sync", "close"}, ops[i-3:i], "written, synced and closed before rename: %v", ops)
					assert.True(t, syncedBeforeNextChange(i), "directory synced after rename %d: %v", i, ops)
				case "exchange", "rename-noreplace":
					if op == "exchange" && i+1 < len(ops) && ops[i+1] == "rename-noreplace" {
						continue // the exchange found no live path and changed nothing
					}
					changes++
					assert.True(t, syncedBeforeNextChange(i), "directory synced after %s %d: %v", op, i, ops)
				}
			}
			assert.Positive(t, changes)
		})
	}
}
