//go:build unix

package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gptme/credslots"
)

// The dry run's copy holds no lease records (copied without their locks
// they would be worse than none), so the leases are asked of the real
// creds dir: a heal the real one refuses because a login is live in a seat
// is refused by its dry run too, never reported as one that would heal.
func TestHealDryRunRefusesWhatALeaseRefuses(t *testing.T) {
	cases := []struct {
		name    string
		account string   // the account .claude.json shows
		args    []string // the heal's
	}{
		// The live file holds alice's seat's refresh, copied home; the
		// account is bob's, so the heal looks like bob's refresh.
		{"a login live in another sub's seat", "bob", []string{"heal", "--auto"}},
		// The heal names alice, whose login is live in her seat.
		{"a sub leased to a seat", "alice", []string{"heal", "alice"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, claudeJSON := homeWithAccounts(t)
			m, err := credslots.New(credslots.WithCredsDir(dir), credslots.WithSubscriptions("alice", "bob"),
				credslots.WithClock(func() time.Time { return testNow }))
			require.NoError(t, err)
			seat := filepath.Join(t.TempDir(), "seat")
			l, err := m.Lease(context.Background(), seat, credslots.LeaseSub("alice"))
			require.NoError(t, err)
			t.Cleanup(func() { _ = l.Release() })
			refreshed := cred(testNow.Add(9*time.Hour), "rt-alice-2")
			write(t, filepath.Join(seat, ".credentials.json"), refreshed)
			write(t, claudeJSON, claudeState(c.account+"@example.test", "uuid-"+c.account))
			claudeRefresh(t, dir, refreshed)
			slots := map[string]string{}
			for _, sub := range []string{"alice", "bob"} {
				slots[sub] = mustRead(t, filepath.Join(dir, ".credentials.json."+sub))
			}

			for _, dry := range []bool{true, false} {
				args := append([]string{"--dir", dir}, c.args...)
				if dry {
					args = append(args, "--dry-run")
				}
				r := run(args...)
				assert.Equal(t, 1, r.code, "%v refuses: stdout %q stderr %q", args, r.stdout, r.stderr)
				assert.Contains(t, r.stderr, "(leased)", "%v", args)
				assert.NotContains(t, r.stdout, "would have", "%v", args)
			}
			for sub, data := range slots {
				assert.Equal(t, data, mustRead(t, filepath.Join(dir, ".credentials.json."+sub)), "%s's slot is untouched", sub)
			}
		})
	}
}
