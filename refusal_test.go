package credslots

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// snapshot records every entry under dir, directories and lock files
// included, with its mode and its content or symlink target, and whether
// Claude Code's legacy lock beside dir exists: a refusal must leave all of
// it exactly as it was.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			v += " -> " + target
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			v += " " + string(data)
		}
		out[path] = v
		return nil
	})
	require.NoError(t, err)
	_, err = os.Lstat(dir + ".lock")
	out["legacy lock exists"] = strconv.FormatBool(err == nil)
	return out
}

// TestRefusalsChangeNothingOnDisk: every refusal of SwitchTo, HealDriftTo,
// HealDrift and Restore leaves the creds dir exactly as it was, on a creds
// dir the package never changed before (no private directory, no lock file).
func TestRefusalsChangeNothingOnDisk(t *testing.T) {
	busy := func() []string { return []string{"agent-1"} }
	cases := []struct {
		name  string
		opts  []Option
		setup func(t *testing.T, f *fixture)
		run   func(m *Manager) error
		want  error
	}{
		{"switch: unknown sub", nil, nil, func(m *Manager) error { _, err := m.SwitchTo("zed", "r"); return err }, ErrUnknownSubscription},
		{"switch: deferred", []Option{WithLockGuard(busy)}, nil, func(m *Manager) error { _, err := m.SwitchTo("bob", "r"); return err }, ErrDeferred},
		{"switch: slot missing", nil, nil, func(m *Manager) error { _, err := m.SwitchTo("erik", "r"); return err }, ErrSlotMissing},
		{"switch: not fresh", nil, func(t *testing.T, f *fixture) { writeSlot(t, f.slot("erik"), stale, "rt-erik") },
			func(m *Manager) error { _, err := m.SwitchTo("erik", "r"); return err }, ErrNotFresh},
		{"switch: identity drift", nil, func(t *testing.T, f *fixture) {
			writeFile(t, f.m.FingerprintPath("bob"), []byte(`{"refresh_token_sha256":"`+hashBytes([]byte("rt-old"))+`"}`))
		}, func(m *Manager) error { _, err := m.SwitchTo("bob", "r"); return err }, ErrIdentityDrift},
		{"switch: live drifted", nil, func(t *testing.T, f *fixture) { f.refresh(t, claudeDoc(fresh, "rt-new")) },
			func(m *Manager) error { _, err := m.SwitchTo("bob", "r"); return err }, ErrLiveDrifted},
		{"heal: no drift", nil, nil, func(m *Manager) error { _, err := m.HealDriftTo("alice"); return err }, ErrNoDrift},
		{"heal: unhealable", nil, func(t *testing.T, f *fixture) { f.refresh(t, []byte(`{"other":1}`)) },
			func(m *Manager) error { _, err := m.HealDriftTo("alice"); return err }, ErrUnhealable},
		{"heal: not fresh", nil, func(t *testing.T, f *fixture) { f.refresh(t, claudeDoc(stale, "rt-new")) },
			func(m *Manager) error { _, err := m.HealDriftTo("alice"); return err }, ErrNotFresh},
		{"heal: deferred", []Option{WithLockGuard(busy)}, func(t *testing.T, f *fixture) { f.refresh(t, claudeDoc(fresh, "rt-new")) },
			func(m *Manager) error { _, err := m.HealDriftTo("alice"); return err }, ErrDeferred},
		{"heal --auto: ambiguous", nil, func(t *testing.T, f *fixture) { f.refresh(t, claudeDoc(fresh, "rt-new")) },
			func(m *Manager) error { _, err := m.HealDrift(); return err }, ErrAmbiguous},
		{"heal: identity of another slot", []Option{WithFormat(CodexCLI)}, func(t *testing.T, f *fixture) {
			writeFile(t, f.slot("bob"), codexDoc(fresh, "acct-bob"))
			writeFile(t, f.slot("alice"), codexDoc(fresh, "acct-alice"))
			f.refresh(t, codexDoc(fresh.Add(time.Hour), "acct-bob"))
		}, func(m *Manager) error { _, err := m.HealDriftTo("alice"); return err }, ErrIdentityDrift},
		{"restore: no such backup", nil, nil, func(m *Manager) error { return m.Restore(".credentials.json.bob.prev", "bob") }, fs.ErrNotExist},
		{"restore: not a credential", nil, func(t *testing.T, f *fixture) { writeFile(t, f.slot("bob")+".prev", []byte(`{}`)) },
			func(m *Manager) error { return m.Restore(".credentials.json.bob.prev", "bob") }, ErrUnhealable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.opts...)
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			writeSlot(t, f.slot("alice"), fresh, "rt-alice")
			f.link(t, "alice")
			if tc.setup != nil {
				tc.setup(t, f)
			}
			before := snapshot(t, f.dir)
			err := tc.run(f.m)
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, before, snapshot(t, f.dir), "the refusal changed the creds dir")
			assert.NoDirExists(t, filepath.Join(f.dir, ".credslots"))
		})
	}
}
