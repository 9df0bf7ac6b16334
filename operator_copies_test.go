package credslots

// Red-team replays of a person's own steps (SPEC sections 18, 20, 21)
// that still filed a login where it does not belong.

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A capture of a slot that a person overwrote with another slot's file
// (cp .credentials.json.bob .credentials.json.alice) would bless one
// single-use refresh token held by two slots: a refresh through either
// kills the other. The capture refuses, naming the other slot, and
// records nothing.
func TestOperatorCaptureRefusesAnotherSlotsLogin(t *testing.T) {
	f, _ := accountsFixture(t)
	before, err := os.ReadFile(f.m.SlotPath("alice") + sidecarSuffix)
	require.NoError(t, err)
	bob, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	writeFile(t, f.slot("alice"), bob)

	_, err = f.m.CaptureSlotFingerprint("alice")
	require.ErrorIs(t, err, ErrIdentityDrift)
	assert.Contains(t, err.Error(), "bob")
	after, err := os.ReadFile(f.m.SlotPath("alice") + sidecarSuffix)
	require.NoError(t, err)
	assert.Equal(t, before, after, "alice's sidecar still records alice's login")

	// A login of its own in alice's slot is captured as before.
	writeFile(t, f.slot("alice"), claudeDoc(fresh, "rt-alice-new"))
	fp, err := f.m.CaptureSlotFingerprint("alice")
	require.NoError(t, err)
	assert.NotEmpty(t, fp)
}

// A Codex sub is known by its account, which a heal files a login by; what
// a refresh spends is its refresh token. A second slot of one account is
// refused, saying so; one refresh token in two slots is refused as a copy,
// as for Claude Code; the original's own capture is not refused.
func TestOperatorCodexCaptureRefusesASecondSlotOfOneAccount(t *testing.T) {
	f := newFixture(t, WithFormat(CodexCLI))
	writeFile(t, f.slot("bob"), codexLogin(fresh, "acct-1", "rt-1"))
	fp, err := f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	assert.Equal(t, hashBytes([]byte("acct-1")), fp)

	writeFile(t, f.slot("alice"), codexLogin(fresh, "acct-1", "rt-2"))
	_, err = f.m.CaptureSlotFingerprint("alice")
	require.ErrorIs(t, err, ErrIdentityDrift)
	assert.Contains(t, err.Error(), "slot alice holds a login of the account bob's slot holds (the same tokens.account_id)")
	assert.NoFileExists(t, f.m.prints["alice"])

	writeFile(t, f.slot("erik"), codexLogin(fresh, "acct-1", "rt-1"))
	_, err = f.m.CaptureSlotFingerprint("erik")
	require.ErrorIs(t, err, ErrIdentityDrift)
	assert.Contains(t, err.Error(), "slot erik holds the same login as bob's slot (a copy of it)")
	assert.NoFileExists(t, f.m.prints["erik"])

	_, err = f.m.CaptureSlotFingerprint("bob")
	assert.NoError(t, err, "the original is its own")
}

// The original of a copy is captured as before, and never called the copy:
// its sidecar records its login.
func TestOperatorCaptureOfTheOriginalOfACopy(t *testing.T) {
	f, _ := accountsFixture(t)
	bob, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	writeFile(t, f.slot("alice"), bob)
	fp, err := f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
	assert.NotEmpty(t, fp)
	_, err = f.m.CaptureSlotFingerprint("alice")
	require.ErrorIs(t, err, ErrIdentityDrift)
	assert.Contains(t, err.Error(), "slot alice holds the same login as bob's slot")
}

// After a refresh, the live file is a regular file holding the active
// sub's newest login. Removing that sub then took its slot (the older,
// spent login) away as its backup, named that backup as the way back,
// and left the only copy of the newest login in a live file no slot
// owns. Remove refuses the sub whose drifted copy is live, as it refuses
// the active sub, and says to heal it first.
func TestOperatorRemoveRefusesTheSubWhoseRefreshIsLive(t *testing.T) {
	f, _ := accountsFixture(t) // bob active
	bobBefore, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	f.refreshAt(t, claudeDoc(fresh.Add(2*time.Hour), "rt-bob-2"), later())

	err = f.m.Remove("bob", "done with it")
	require.ErrorIs(t, err, ErrActiveSub)
	assert.Contains(t, err.Error(), "credslots heal bob")
	got, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, bobBefore, got, "bob's slot is still there")

	// Another sub is removed as before.
	require.NoError(t, f.m.Remove("alice", "done with it"))
}

// A rotation by copy (cp .credentials.json.bob .credentials.json) makes
// bob live as a regular file: Remove refuses bob as the active sub.
func TestOperatorRemoveRefusesTheSubCopiedLive(t *testing.T) {
	f, _ := accountsFixture(t)
	bob, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(f.m.LivePath()))
	writeFile(t, f.m.LivePath(), bob)

	err = f.m.Remove("bob", "done with it")
	require.ErrorIs(t, err, ErrActiveSub)
	assert.Contains(t, err.Error(), "copy of its slot")
	_, err = os.Stat(f.slot("bob"))
	require.NoError(t, err, "bob's slot is still there")
	require.NoError(t, f.m.Remove("alice", "done with it"))
}

// After bob's refresh, a person copies the live file into alice's slot
// (cp .credentials.json .credentials.json.alice) and captures alice. The
// live file then matches alice's slot, so nothing would ever heal bob's
// newest login into bob's slot, and alice would be filed as bob's login.
// The capture refuses, naming bob.
func TestOperatorCaptureRefusesTheLiveRefreshOfAnotherSub(t *testing.T) {
	f, _ := accountsFixture(t) // bob active
	f.refreshAt(t, claudeDoc(fresh.Add(2*time.Hour), "rt-bob-2"), later())
	live, err := os.ReadFile(f.m.LivePath())
	require.NoError(t, err)
	writeFile(t, f.slot("alice"), live)

	_, err = f.m.CaptureSlotFingerprint("alice")
	require.ErrorIs(t, err, ErrIdentityDrift)
	assert.Contains(t, err.Error(), "bob")

	// Bob's own slot, healed with its refresh, captures as before.
	writeSlot(t, f.slot("alice"), fresh, "rt-alice-new")
	_, err = f.m.HealDriftTo("bob")
	require.NoError(t, err)
	_, err = f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
}

// A rotation by copy (cp .credentials.json.alice .credentials.json after
// bob was switched to) leaves alice's capture as it was: her slot holds
// the login her sidecar records.
func TestOperatorCaptureAfterARotationByCopy(t *testing.T) {
	f, _ := accountsFixture(t) // bob active
	alice, err := os.ReadFile(f.slot("alice"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(f.m.LivePath()))
	writeFile(t, f.m.LivePath(), alice)
	require.NoError(t, os.Chtimes(f.m.LivePath(), later(), later()))
	_, err = f.m.CaptureSlotFingerprint("alice")
	require.NoError(t, err)
}

// After bob's refresh a person copies the live file into alice's slot
// (cp .credentials.json .credentials.json.alice): the live file then
// holds alice's slot's bytes, but the slot was written, not the live
// path. RecordFlip (watch calls it on every change) records no flip to
// alice, so the journal still says bob's login is live and the capture
// of alice refuses. A copy of a slot put at the live path is still a flip.
func TestOperatorACopyIntoASlotIsNoFlip(t *testing.T) {
	f, _ := accountsFixture(t) // bob active
	t0 := later()
	f.refreshAt(t, claudeDoc(fresh.Add(2*time.Hour), "rt-bob-2"), t0)
	live, err := os.ReadFile(f.m.LivePath())
	require.NoError(t, err)
	writeFile(t, f.slot("alice"), live)
	require.NoError(t, os.Chtimes(f.slot("alice"), t0.Add(time.Minute), t0.Add(time.Minute)))

	sub, recorded, err := f.m.RecordFlip()
	require.NoError(t, err)
	assert.False(t, recorded, "no flip to %q", sub)
	last, _ := f.m.LastActive()
	assert.Equal(t, "bob", last)
	_, err = f.m.CaptureSlotFingerprint("alice")
	require.ErrorIs(t, err, ErrIdentityDrift)

	// The slot's bytes put at the live path afterwards are a flip.
	require.NoError(t, os.Chtimes(f.m.LivePath(), t0.Add(2*time.Minute), t0.Add(2*time.Minute)))
	sub, recorded, err = f.m.RecordFlip()
	require.NoError(t, err)
	assert.True(t, recorded)
	assert.Equal(t, "alice", sub)
}
