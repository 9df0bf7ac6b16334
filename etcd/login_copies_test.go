package etcd_test

// One refresh token, a single-use login, in two keys of the pool would be
// handed to two seats (two hosts): the first refresh through either ends
// the other.

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gptme/credslots"
	"github.com/gptme/credslots/etcd"
)

// Import compared Codex identities (the account) alone: the same refresh
// token under another account_id went in as a second sub's login. It now
// refuses one refresh token in two keys, and, a sub being one account, a
// second login of an account another key holds.
func TestImportRefusesOneRefreshTokenInTwoKeys(t *testing.T) {
	c := sharedCluster(t)
	p := newPool(t, newClient(t, c.endpoints()...), testPrefix(t), writeKey(t), etcd.WithFormat(credslots.CodexCLI))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "work", codexLogin("acct-1", later, "SECRET-a")))
	err := p.Import(ctx, "spare", codexLogin("acct-2", later, "SECRET-a"))
	require.ErrorIs(t, err, etcd.ErrDuplicate, "work's refresh token")
	assert.Contains(t, err.Error(), "sub work holds this login already")
	assert.NotContains(t, err.Error(), marker)
	err = p.Import(ctx, "spare", codexLogin("acct-1", later, "SECRET-b"))
	require.ErrorIs(t, err, etcd.ErrDuplicate, "work's account")
	assert.Contains(t, err.Error(), "sub work holds a login of this account already")
	require.NoError(t, p.Import(ctx, "spare", codexLogin("acct-2", later, "SECRET-b")))
}

// A seat leased to bob into which alice's login was copied was written
// back into bob's key as bob's newer login: two keys then held alice's
// refresh token, for two hosts to lease.
func TestWriteBackRefusesALoginAnotherSubHolds(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c.endpoints()...)
	p := newPool(t, cli, testPrefix(t), writeKey(t))
	ctx := context.Background()
	alice := claudeLogin("alice", 0, later.Add(1e9))
	require.NoError(t, p.Import(ctx, "alice", alice))
	require.NoError(t, p.Import(ctx, "bob", claudeLogin("bob", 0, later)))
	seat := filepath.Join(t.TempDir(), "seat")
	l, err := p.Lease(ctx, seat, etcd.LeaseSub("bob"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(seat, ".credentials.json"), alice, 0o600))

	err = l.Sync()
	require.ErrorIs(t, err, etcd.ErrDuplicate)
	assert.Contains(t, err.Error(), "alice")
	assert.NotContains(t, err.Error(), marker)
	err = l.Release()
	require.ErrorIs(t, err, etcd.ErrDuplicate, "the release says what it kept aside")
	stored, err := p.Export(ctx, "bob")
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-bob-0", refreshToken(t, stored), "bob's key keeps bob's login")
	data, err := os.ReadFile(filepath.Join(seat, ".credentials.json"))
	if err == nil {
		assert.NotContains(t, string(data), "claudeAiOauth", "the copy left the seat")
	}
	assertNoTokenStored(t, cli)
}
