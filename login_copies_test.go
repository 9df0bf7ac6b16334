package credslots

// Red-team replays of sequences that ended with one refresh token, a
// single-use login, live in two places (two slots, a slot and a seat, two
// seats).

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// codexLogin is a Codex CLI login of account with its own refresh token.
func codexLogin(expiry time.Time, account, refresh string) []byte {
	return []byte(strings.Replace(string(codexDoc(expiry, account)), `"rt-`+account+`"`, `"`+refresh+`"`, 1))
}

// A seat leased to bob into which alice's login was copied (an agent set
// up by copying a credential file) held alice's refresh token; the release
// wrote it back into bob's slot as bob's newer login, so that two slots
// held it, bob's own login pushed out to a backup.
func TestLeaseReleaseKeepsAnotherSlotsLoginOutOfItsSlot(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []Option
		slots   func(t *testing.T, f *fixture)
		copyIn  func(t *testing.T, f *fixture, seat string)
		seatDoc string
	}{
		{"claude", nil, func(t *testing.T, f *fixture) {},
			func(t *testing.T, f *fixture, seat string) {
				alice, err := os.ReadFile(f.slot("alice"))
				require.NoError(t, err)
				writeFile(t, filepath.Join(seat, DefaultLiveName), alice)
			}, DefaultLiveName},
		{"codex", []Option{WithFormat(CodexCLI)}, func(t *testing.T, f *fixture) {
			for i, sub := range []string{"erik", "bob", "alice"} {
				writeFile(t, f.slot(sub), codexLogin(fresh.Add(time.Duration(i)*time.Hour), "acct-"+sub, "rt-"+sub+"-0"))
				_, err := f.m.CaptureSlotFingerprint(sub)
				require.NoError(t, err)
			}
		}, func(t *testing.T, f *fixture, seat string) {
			alice, err := os.ReadFile(f.slot("alice"))
			require.NoError(t, err)
			writeFile(t, filepath.Join(seat, "auth.json"), alice)
		}, "auth.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f *fixture
			if tc.opts == nil {
				f = leaseFixture(t)
			} else {
				f = newFixture(t, tc.opts...)
			}
			tc.slots(t, f)
			bob, err := os.ReadFile(f.slot("bob"))
			require.NoError(t, err)
			seat := seatDir(t)
			l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
			require.NoError(t, err)
			tc.copyIn(t, f, seat)

			err = l.Sync()
			require.ErrorIs(t, err, ErrIdentityDrift, "alice's login is not bob's newer one")
			assert.Contains(t, err.Error(), "alice")
			require.NoError(t, l.Release())
			after, err := os.ReadFile(f.slot("bob"))
			require.NoError(t, err)
			assert.Equal(t, bob, after, "bob's slot keeps bob's login")
			assert.NoFileExists(t, filepath.Join(seat, tc.seatDoc), "the copy left the seat")
			st, err := f.m.Status()
			require.NoError(t, err)
			for _, p := range st.Problems {
				assert.NotContains(t, p, "same login", "no slot holds another's login")
				assert.NotContains(t, p, "one login")
			}
		})
	}
}

// copySlot copies from's slot over to's, as a person's cp would, and
// removes to's sidecar (a slot set up by hand has none).
func copySlot(t *testing.T, f *fixture, from, to string) {
	t.Helper()
	data, err := os.ReadFile(f.slot(from))
	require.NoError(t, err)
	writeFile(t, f.slot(to), data)
	require.NoError(t, os.Remove(f.m.prints[to]))
}

// Lease skipped only the sub the live symlink (or the journal) names as
// home's. A live file copied from another slot (a rotation by cp), or a
// slot copied from home's, put home's refresh token in a seat too.
func TestLeaseRefusesASubWhoseLoginIsLiveAtHome(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, f *fixture) string // the sub whose login is live at home
	}{
		{"the live file is a copy of its slot", func(t *testing.T, f *fixture) string {
			_, err := f.m.SwitchTo("bob", "home")
			require.NoError(t, err)
			alice, err := os.ReadFile(f.slot("alice"))
			require.NoError(t, err)
			f.refresh(t, alice)
			return "alice"
		}},
		{"its slot is a copy of home's", func(t *testing.T, f *fixture) string {
			_, err := f.m.SwitchTo("bob", "home")
			require.NoError(t, err)
			copySlot(t, f, "bob", "alice")
			return "alice"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := leaseFixture(t)
			sub := tc.setup(t, f)
			_, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub(sub))
			require.ErrorIs(t, err, ErrNoFreeSub)
			assert.Contains(t, err.Error(), sub+": ")
			assert.Contains(t, err.Error(), "live at home")
			l, err := f.m.Lease(context.Background(), seatDir(t))
			require.NoError(t, err)
			assert.NotEqual(t, sub, l.Sub())
			assert.NotEqual(t, "bob", l.Sub())
			require.NoError(t, l.Release())
		})
	}
}

// A slot copied from a leased sub's slot held the seat's refresh token:
// a switch to it (forced or not) made it live at home too, and a lease of
// it put it in a second seat.
func TestLeasedLoginIsNotHandedOutAgainFromACopy(t *testing.T) {
	f := leaseFixture(t)
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	copySlot(t, f, "bob", "erik")
	for _, opts := range [][]SwitchOption{nil, {Force()}} {
		res, err := f.m.SwitchTo("erik", "x", opts...)
		require.ErrorIs(t, err, ErrLeased)
		assert.False(t, res.OK)
		assert.Contains(t, res.Reason, "bob's login, leased to "+seat)
	}
	assert.Empty(t, f.readlink(t), "home holds nothing of it")
	_, err = f.m.Lease(context.Background(), seatDir(t), LeaseSub("erik"))
	require.ErrorIs(t, err, ErrNoFreeSub)
	assert.Contains(t, err.Error(), "erik: its login is bob's login, leased to "+seat)

	// The seat's CLI refreshed and the slot took it back: the copy now
	// holds a spent token, no longer the seat's.
	cliRefresh(t, seat, fresh.Add(20*time.Hour), "rt-bob-1")
	require.NoError(t, l.Sync())
	_, err = f.m.SwitchTo("erik", "x", Force())
	require.NoError(t, err)
	require.NoError(t, l.Release())
}

// A backup holding the login another slot holds now, which neither the
// journal nor a sidecar names (a slot set up by hand), was restored into
// a second slot: one refresh token in two slots.
func TestRestoreRefusesABackupOfAnotherSlotsLogin(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	_, err := f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	alice := writeSlot(t, f.slot("alice"), fresh.Add(time.Hour), "rt-alice")
	writeFile(t, f.m.LivePath()+prevSuffix, alice)
	err = f.m.Restore(filepath.Base(f.m.LivePath())+prevSuffix, "bob")
	require.ErrorIs(t, err, ErrIdentityDrift)
	assert.Contains(t, err.Error(), "alice")
	assert.Equal(t, "rt-bob", refreshTokenOf(mustRead(t, f.slot("bob"))))
	require.NoError(t, f.m.Restore(filepath.Base(f.m.LivePath())+prevSuffix, "bob", Force()), "Force overrides")
}

// For Codex CLI the identity is the account (tokens.account_id), not the
// login: a backup holding another login of alice's account is alice's, and
// one of an account bob never had is not bob's, even when no slot holds
// it. Restoring either into bob would file another account under bob and
// capture it as bob's.
func TestCodexRestoreRefusesABackupOfAnotherAccount(t *testing.T) {
	withRefresh := func(doc []byte, rt string) []byte {
		out := bytes.Replace(doc, []byte(`"refresh_token":"rt-`), []byte(`"refresh_token":"`+rt+`-`), 1)
		require.NotEqual(t, doc, out)
		return out
	}
	for _, c := range []struct{ name, account, says string }{
		{"another login of another slot's account", "id-alice", "slot alice"},
		{"a login of an account no slot has", "id-carol", "differs from the one captured for bob"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, WithFormat(CodexCLI))
			bob := codexDoc(fresh, "id-bob")
			writeFile(t, f.slot("bob"), bob)
			_, err := f.m.CaptureSlotFingerprint("bob")
			require.NoError(t, err)
			writeFile(t, f.slot("alice"), codexDoc(fresh, "id-alice")) // by hand, never captured
			backup := filepath.Base(f.m.LivePath()) + prevSuffix
			writeFile(t, f.m.LivePath()+prevSuffix, withRefresh(codexDoc(fresh.Add(time.Hour), c.account), "rt-2"))

			err = f.m.Restore(backup, "bob")
			require.ErrorIs(t, err, ErrIdentityDrift)
			assert.Contains(t, err.Error(), c.says)
			assert.Equal(t, string(bob), string(mustRead(t, f.slot("bob"))), "bob's slot keeps bob's account")
			stored, ok := f.m.ReadStoredFingerprint("bob")
			require.True(t, ok)
			assert.Equal(t, hashBytes([]byte("id-bob")), stored, "bob's captured identity is left alone")
			require.NoError(t, f.m.Restore(backup, "bob", Force()), "Force overrides")
		})
	}
	t.Run("another login of bob's own account", func(t *testing.T) {
		f := newFixture(t, WithFormat(CodexCLI))
		writeFile(t, f.slot("bob"), codexDoc(fresh, "id-bob"))
		_, err := f.m.CaptureSlotFingerprint("bob")
		require.NoError(t, err)
		writeFile(t, f.m.LivePath()+prevSuffix, withRefresh(codexDoc(fresh.Add(time.Hour), "id-bob"), "rt-2"))
		require.NoError(t, f.m.Restore(filepath.Base(f.m.LivePath())+prevSuffix, "bob"))
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}

// A seat's refreshed login copied home (cp from an agent's seat) was
// healed into the sub the journal says is home's: that slot and home then
// held the refresh token the seat's CLI holds, and Status said nothing.
func TestHealRefusesALoginLiveInASeat(t *testing.T) {
	f := leaseFixture(t)
	_, err := f.m.SwitchTo("alice", "home")
	require.NoError(t, err)
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	cliRefresh(t, seat, fresh.Add(20*time.Hour), "rt-bob-1")
	f.refreshAt(t, mustRead(t, filepath.Join(seat, DefaultLiveName)), later())

	st, err := f.m.Status()
	require.NoError(t, err)
	assert.Contains(t, strings.Join(st.Problems, "\n"), "the live file holds bob's login, leased to "+seat)
	for _, heal := range []func() (SwitchResult, error){
		func() (SwitchResult, error) { return f.m.HealDrift() },
		func() (SwitchResult, error) { return f.m.HealDriftTo("alice", Force()) },
	} {
		res, err := heal()
		require.ErrorIs(t, err, ErrLeased)
		assert.Contains(t, res.Reason, "bob's login, leased to "+seat)
	}
	assert.Equal(t, "rt-alice-0", refreshTokenOf(mustRead(t, f.slot("alice"))))
	require.NoError(t, l.Release())
}

// One seat's refreshed login copied into another lease's seat was written
// back into that lease's slot as its CLI's refresh (a refresh token never
// seen before): two seats and a slot then held one refresh token.
func TestSyncRefusesALoginLiveInAnotherSeat(t *testing.T) {
	f := leaseFixture(t)
	bobSeat, erikSeat := seatDir(t), seatDir(t)
	bob, err := f.m.Lease(context.Background(), bobSeat, LeaseSub("bob"))
	require.NoError(t, err)
	erik, err := f.m.Lease(context.Background(), erikSeat, LeaseSub("erik"))
	require.NoError(t, err)
	cliRefresh(t, bobSeat, fresh.Add(20*time.Hour), "rt-bob-1")
	writeFile(t, filepath.Join(erikSeat, DefaultLiveName), mustRead(t, filepath.Join(bobSeat, DefaultLiveName)))

	st, err := f.m.Status()
	require.NoError(t, err)
	assert.Contains(t, strings.Join(st.Problems, "\n"), "bob's login, leased to "+bobSeat)
	err = erik.Sync()
	require.ErrorIs(t, err, ErrIdentityDrift)
	assert.Contains(t, err.Error(), "bob's login, leased to "+bobSeat)
	assert.Equal(t, "rt-erik-0", refreshTokenOf(mustRead(t, f.slot("erik"))))
	require.NoError(t, erik.Release())
	assert.Equal(t, "rt-erik-0", refreshTokenOf(mustRead(t, f.slot("erik"))))
	require.NoError(t, bob.Release())
	assert.Equal(t, "rt-bob-0", refreshTokenOf(mustRead(t, f.slot("bob"))),
		"which seat's was the original cannot be told: neither slot gets it (see TestASeatsLoginCopiedIntoAnotherSeatIsWrittenBackIntoNeither)")
}

// A refresh the seat's CLI made (a token never seen before) copied out of
// the seat into another slot by hand: capture refuses to bless that slot's
// copy of the leased login, and the lease's own write-back still takes
// its refreshed login home (the other slot took a copy from the seat).
func TestASeatsRefreshCopiedIntoAnotherSlotStaysTheLeasesLogin(t *testing.T) {
	f := leaseFixture(t)
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	cliRefresh(t, seat, fresh.Add(20*time.Hour), "rt-bob-1")
	writeFile(t, f.slot("erik"), mustRead(t, filepath.Join(seat, DefaultLiveName)))

	_, err = f.m.CaptureSlotFingerprint("erik")
	require.ErrorIs(t, err, ErrIdentityDrift)
	assert.Contains(t, err.Error(), "bob's login, leased to "+seat)
	require.NoError(t, l.Sync())
	assert.Equal(t, "rt-bob-1", refreshTokenOf(mustRead(t, f.slot("bob"))))
	require.NoError(t, l.Release())
	st, err := f.m.Status()
	require.NoError(t, err)
	assert.Contains(t, st.Problems, copiedLogin("erik", "bob"))
}

// The same for Codex, whose identity (the account) survives the refresh:
// the seat's refreshed login of bob's account is bob's, and the slot that
// took a copy of it is the copy; the write-back was refused.
func TestACodexSeatsRefreshCopiedIntoAnotherSlotStaysTheLeasesLogin(t *testing.T) {
	f := newFixture(t, WithFormat(CodexCLI))
	for _, sub := range []string{"erik", "bob"} {
		writeFile(t, f.slot(sub), codexLogin(fresh, "acct-"+sub, "rt-"+sub+"-0"))
		_, err := f.m.CaptureSlotFingerprint(sub)
		require.NoError(t, err)
	}
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	refreshed := codexLogin(fresh.Add(time.Hour), "acct-bob", "rt-bob-1")
	writeFile(t, filepath.Join(seat, "auth.json.tmp"), refreshed)
	require.NoError(t, os.Rename(filepath.Join(seat, "auth.json.tmp"), filepath.Join(seat, "auth.json")))
	writeFile(t, f.slot("erik"), refreshed)

	require.NoError(t, l.Sync(), "bob's own refresh goes home")
	assert.Equal(t, refreshed, mustRead(t, f.slot("bob")))
	require.NoError(t, l.Release())
	st, err := f.m.Status()
	require.NoError(t, err)
	assert.Contains(t, st.Problems, copiedLogin("erik", "bob"))
}

// A backup holding a seat's refreshed login (a copy of the seat's file,
// put where backups are) was restored, even unforced, into another slot:
// no record named the new token yet. The slot then held the refresh token
// the seat's CLI holds, and Status said nothing until the seat wrote back.
func TestRestoreRefusesALoginLiveInASeat(t *testing.T) {
	f := leaseFixture(t)
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	cliRefresh(t, seat, fresh.Add(20*time.Hour), "rt-bob-1")
	writeFile(t, f.m.LivePath()+prevSuffix, mustRead(t, filepath.Join(seat, DefaultLiveName)))
	for _, opts := range [][]SwitchOption{nil, {Force()}} {
		err := f.m.Restore(filepath.Base(f.m.LivePath())+prevSuffix, "erik", opts...)
		require.ErrorIs(t, err, ErrLeased)
		assert.Contains(t, err.Error(), "bob's login, leased to "+seat)
	}
	assert.Equal(t, "rt-erik-0", refreshTokenOf(mustRead(t, f.slot("erik"))))

	writeFile(t, f.slot("erik"), mustRead(t, filepath.Join(seat, DefaultLiveName)))
	st, err := f.m.Status()
	require.NoError(t, err)
	assert.Contains(t, strings.Join(st.Problems, "\n"), "slot erik holds bob's login, leased to "+seat)
	require.NoError(t, l.Release())
}

// Remove took a leased sub's slot away: its login, live in the seat, was
// then the backup that restore offers for any slot (a second live place
// once restored elsewhere), and the release wrote the seat's login into a
// slot removed from the rotation.
func TestRemoveRefusesALeasedSub(t *testing.T) {
	f := leaseFixture(t)
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	err = f.m.Remove("bob", "x")
	require.ErrorIs(t, err, ErrLeased)
	assert.Contains(t, err.Error(), "leased to "+seat)
	assert.FileExists(t, f.slot("bob"))
	require.NoError(t, l.Release())
	require.NoError(t, f.m.Remove("bob", "x"))
}

// A live file the CLI refreshed after a link made by hand (no change
// recorded, so no journal names its sub) may be any sub's refresh: every
// slot's refresh token may be the one it spent. Lease handed one out; it
// now refuses, naming the way on, until the live file is healed into its
// sub. Where the identity survives a refresh (Codex), the live file names
// its sub, and only that one is kept back.
func TestLeaseKeepsBackAnUnnamedLiveLogin(t *testing.T) {
	t.Run("claude", func(t *testing.T) {
		f := leaseFixture(t)
		f.link(t, "bob")
		f.refresh(t, claudeDoc(fresh.Add(2*time.Hour), "rt-bob-1"))
		seat := seatDir(t)
		_, err := f.m.Lease(context.Background(), seat)
		require.ErrorIs(t, err, ErrNoFreeSub)
		assert.Contains(t, err.Error(), "the live file at home holds a login no record names")
		assert.NoFileExists(t, filepath.Join(seat, DefaultLiveName), "nothing handed out")

		_, err = f.m.HealDriftTo("bob")
		require.NoError(t, err)
		l, err := f.m.Lease(context.Background(), seat)
		require.NoError(t, err)
		assert.NotEqual(t, "bob", l.Sub())
		require.NoError(t, l.Release())
	})
	t.Run("claude, the account shown", func(t *testing.T) {
		f, claudeJSONPath := homeFixture(t)
		learnAccounts(t, f, claudeJSONPath) // no change journaled; the link on bob, .claude.json shows bob
		f.refresh(t, claudeDoc(fresh.Add(2*time.Hour), "rt-bob-1"))
		assertHomeKeepsBob(t, f)
	})
	t.Run("claude, a new login shown", func(t *testing.T) {
		f, claudeJSONPath := homeFixture(t)
		learnAccounts(t, f, claudeJSONPath)
		writeFile(t, claudeJSONPath, claudeJSON(daveAccount))
		f.refresh(t, claudeDoc(fresh.Add(2*time.Hour), "rt-dave"))
		l, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("bob"))
		require.NoError(t, err, "dave's login is no sub's: bob's slot is not spent")
		require.NoError(t, l.Release())
	})
	t.Run("claude, a live file older than the last switch", func(t *testing.T) {
		f := leaseFixture(t)
		f.link(t, "alice")
		_, err := f.m.SwitchTo("bob", "x")
		require.NoError(t, err)
		f.refreshAt(t, claudeDoc(fresh.Add(2*time.Hour), "rt-alice-1"), time.Now().Add(-time.Hour))
		_, err = f.m.Lease(context.Background(), seatDir(t), LeaseSub("alice"))
		require.ErrorIs(t, err, ErrNoFreeSub, "the live file may be alice's refresh, from before the switch")
		assert.Contains(t, err.Error(), "alice: live at home")
		l, err := f.m.Lease(context.Background(), seatDir(t))
		require.NoError(t, err)
		assert.Equal(t, "erik", l.Sub())
		require.NoError(t, l.Release())
	})
	t.Run("codex, a new account", func(t *testing.T) {
		f := newFixture(t, WithFormat(CodexCLI))
		writeFile(t, f.slot("bob"), codexLogin(fresh, "acct-bob", "rt-bob-0"))
		f.link(t, "bob")
		f.refresh(t, codexLogin(fresh.Add(time.Hour), "acct-new", "rt-new-0"))
		l, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("bob"))
		require.NoError(t, err, "an account no slot has is no sub's refresh")
		require.NoError(t, l.Release())
	})
	t.Run("codex", func(t *testing.T) {
		f := newFixture(t, WithFormat(CodexCLI))
		for _, sub := range []string{"bob", "alice"} {
			writeFile(t, f.slot(sub), codexLogin(fresh, "acct-"+sub, "rt-"+sub+"-0"))
			_, err := f.m.CaptureSlotFingerprint(sub)
			require.NoError(t, err)
		}
		f.link(t, "bob")
		f.refresh(t, codexLogin(fresh.Add(time.Hour), "acct-bob", "rt-bob-1"))
		assertHomeKeepsBob(t, f)
	})
}

// A waiting Lease makes an attempt, under the locks, only when a sub looks
// free; a slot copied from a leased sub's looked free, so every poll took
// home's refresh lock only to be refused.
func TestLeaseWaitingTakesNoLockForACopyOfALeasedLogin(t *testing.T) {
	ffs := &faultFS{inner: disk.OS{}, failAt: -1}
	f := leaseFixture(t, withFS(ffs))
	for _, sub := range []string{"bob", "alice"} {
		held, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub(sub))
		require.NoError(t, err)
		defer held.Release()
	}
	copySlot(t, f, "bob", "erik")
	assert.Equal(t, 1, waitingLeaseTakesHomesLock(t, f, ffs), "the refresh lock at home taken for the first attempt only, not on every poll")
}

// One seat's refreshed login copied into another held lease's seat before
// either wrote it back: which seat's is the original cannot be told from
// the files. The first release kept it aside; the second then took it for
// its own seat's refresh and wrote it into its slot, pushing that sub's
// valid login out. Now the first release journals it as contested and
// neither slot gets it, in either order; it stays in the backups.
func TestASeatsLoginCopiedIntoAnotherSeatIsWrittenBackIntoNeither(t *testing.T) {
	for _, first := range []string{"bob", "erik"} {
		t.Run(first+" released first", func(t *testing.T) {
			f := leaseFixture(t)
			seats := map[string]string{"bob": seatDir(t), "erik": seatDir(t)}
			leases := map[string]*Lease{}
			for _, sub := range []string{"bob", "erik"} {
				l, err := f.m.Lease(context.Background(), seats[sub], LeaseSub(sub))
				require.NoError(t, err)
				leases[sub] = l
			}
			cliRefresh(t, seats["bob"], fresh.Add(20*time.Hour), "rt-bob-1")
			copied := filepath.Join(seats["erik"], DefaultLiveName)
			writeFile(t, copied+".tmp", mustRead(t, filepath.Join(seats["bob"], DefaultLiveName)))
			require.NoError(t, os.Rename(copied+".tmp", copied))

			for _, sub := range []string{"bob", "erik"} {
				require.ErrorIs(t, leases[sub].Sync(), ErrIdentityDrift, sub)
			}
			second := map[string]string{"bob": "erik", "erik": "bob"}[first]
			require.NoError(t, leases[first].Release())
			require.NoError(t, leases[second].Release())

			assert.Equal(t, "rt-bob-0", refreshTokenOf(mustRead(t, f.slot("bob"))))
			assert.Equal(t, "rt-erik-0", refreshTokenOf(mustRead(t, f.slot("erik"))), "erik's own login stays in its slot")
			backups, err := f.m.Backups()
			require.NoError(t, err)
			kept := 0
			for _, b := range backups {
				if refreshTokenOf(mustRead(t, b.Path)) == "rt-bob-1" {
					kept++
				}
			}
			assert.Equal(t, 2, kept, "the login is kept, from each seat")
		})
	}
}

// A seat stuck with another slot's login is judged once a Sync, not twice:
// the look under the seat's locks finds the very bytes the first look
// judged. Each judgement reads the journal and every other slot, on every
// look for as long as the lease lasts.
func TestSyncJudgesAStuckSeatOnce(t *testing.T) {
	ffs := &faultFS{inner: disk.OS{}, failAt: -1}
	f := leaseFixture(t, withFS(ffs))
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	defer l.Release()
	writeFile(t, filepath.Join(seat, DefaultLiveName), mustRead(t, f.slot("alice")))
	require.ErrorIs(t, l.Sync(), ErrIdentityDrift)

	reads := func() int {
		ffs.mu.Lock()
		defer ffs.mu.Unlock()
		n := 0
		for _, op := range ffs.log {
			if op == "read "+filepath.Base(f.slot("alice")) {
				n++
			}
		}
		return n
	}
	before := reads()
	require.ErrorIs(t, l.Sync(), ErrIdentityDrift)
	assert.Equal(t, 1, reads()-before, "alice's slot read once: one judgement")
}

// assertHomeKeepsBob checks that bob, live at home, is leased to no seat,
// and that alice is.
func assertHomeKeepsBob(t *testing.T, f *fixture) {
	t.Helper()
	_, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("bob"))
	require.ErrorIs(t, err, ErrNoFreeSub)
	assert.Contains(t, err.Error(), "bob: live at home")
	l, err := f.m.Lease(context.Background(), seatDir(t))
	require.NoError(t, err)
	assert.Equal(t, "alice", l.Sub())
	require.NoError(t, l.Release())
}

// A slot made by hand (no identity captured) holds erik's account; a
// rotation by copy makes erik live, and the CLI then logs in to carol.
// Where the identity survives a refresh, the slot's own identity stands
// for the captured one: carol's login is a new login, not erik's refresh,
// whether the heal is named or not.
func TestANewLoginIsNotHealedIntoAnUncapturedSlotOfAnotherAccount(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format Format
		doc    func(exp time.Time, who string) []byte
	}{
		{"codex", CodexCLI, func(exp time.Time, who string) []byte { return codexLogin(exp, "acct-"+who, "rt-"+who+"-0") }},
		{"gemini", GeminiCLI, func(exp time.Time, who string) []byte { return geminiDoc(exp, "rt-"+who) }},
	} {
		for _, named := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/named=%v", tc.name, named), func(t *testing.T) {
				f := newFixture(t, WithFormat(tc.format))
				writeFile(t, f.slot("bob"), tc.doc(fresh, "bob"))
				writeFile(t, f.slot("alice"), tc.doc(fresh, "alice"))
				erik := tc.doc(fresh, "erik")
				writeFile(t, f.slot("erik"), erik) // by hand, never captured
				_, err := f.m.SwitchTo("alice", "start")
				require.NoError(t, err)
				_, err = f.m.SwitchTo("bob", "start")
				require.NoError(t, err)
				f.refreshAt(t, erik, time.Now().Add(time.Minute)) // cp <live>.erik <live>
				sub, ok, err := f.m.RecordFlip()
				require.NoError(t, err)
				require.True(t, ok)
				require.Equal(t, "erik", sub)
				f.refreshAt(t, tc.doc(fresh.Add(2*time.Hour), "carol"), later()) // a login to carol
				var res SwitchResult
				if named {
					res, err = f.m.HealDriftTo("erik")
				} else {
					res, err = f.m.HealDrift()
				}
				require.ErrorIs(t, err, ErrNewLogin, "carol's login healed into erik's slot: %s", res.Reason)
				require.ErrorIs(t, err, ErrIdentityDrift)
				assert.Contains(t, res.Reason, "credslots add NAME")
				require.Equal(t, string(erik), string(mustRead(t, f.slot("erik"))), "erik's slot keeps erik's login")

				// erik's own refresh (same identity) still heals.
				f.refreshAt(t, tc.doc(fresh.Add(3*time.Hour), "erik"), later().Add(time.Minute))
				_, err = f.m.HealDriftTo("erik")
				require.NoError(t, err)
			})
		}
	}
}

// Restore over a slot made by hand: where the identity survives a
// refresh, the slot's own identity stands for the captured one, so
// another account's login is refused.
func TestCodexRestoreRefusesAnotherAccountOverAnUncapturedSlot(t *testing.T) {
	f := newFixture(t, WithFormat(CodexCLI))
	writeFile(t, f.slot("bob"), codexLogin(fresh, "acct-bob", "rt-bob-0"))
	erik := codexLogin(fresh, "acct-erik", "rt-erik-0")
	writeFile(t, f.slot("erik"), erik) // by hand, never captured
	carol := codexLogin(fresh.Add(time.Hour), "acct-carol", "rt-carol-0")
	writeFile(t, f.m.LivePath()+prevSuffix, carol)
	kept := filepath.Base(f.m.LivePath()) + prevSuffix
	err := f.m.Restore(kept, "erik")
	require.ErrorIs(t, err, ErrIdentityDrift)
	require.Equal(t, string(erik), string(mustRead(t, f.slot("erik"))))
	// erik's own account's other login goes in.
	writeFile(t, f.m.LivePath()+prevSuffix, codexLogin(fresh.Add(time.Hour), "acct-erik", "rt-erik-1"))
	require.NoError(t, f.m.Restore(kept, "erik"))
}

// Codex: every login of an account has its account_id, so a mark on the
// identity stood on a new login of the same account too, and the capture
// the refusal advises never cleared it. The mark also names the logins it
// was placed on: a capture of another one (a new login) clears it, a
// capture of the rejected one keeps it.
func TestCodexARecaptureAfterANewLoginClearsTheMark(t *testing.T) {
	f := newFixture(t, WithFormat(CodexCLI))
	writeFile(t, f.slot("bob"), codexLogin(fresh, "acct-bob", "rt-bob-0"))
	writeFile(t, f.slot("alice"), codexLogin(fresh, "acct-alice", "rt-alice-0"))
	_, err := f.m.SwitchTo("alice", "start")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	require.NoError(t, f.m.MarkInvalid("bob", "401"))
	_, err = f.m.SwitchTo("alice", "away")
	require.NoError(t, err)

	_, err = f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	_, err = f.m.SwitchTo("bob", "back")
	require.ErrorIs(t, err, ErrInvalidated, "a capture of the rejected login keeps the mark")

	writeFile(t, f.slot("bob"), codexLogin(fresh.Add(time.Hour), "acct-bob", "rt-bob-relogin"))
	_, err = f.m.SwitchTo("bob", "back")
	require.ErrorIs(t, err, ErrInvalidated, "until it is captured, the mark stands")
	_, err = f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	res, err := f.m.SwitchTo("bob", "back")
	require.NoError(t, err, "a new login of bob's account, captured, is not the rejected one: %s", res.Reason)
}
