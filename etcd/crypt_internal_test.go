package etcd

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSealedValuesAreBoundToTheirKeyName(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	s, err := newSealer(key)
	require.NoError(t, err)
	plain := []byte(`{"claudeAiOauth":{"refreshToken":"SECRET"}}`)
	sealed, err := s.seal("/credslots/logins/alice", plain)
	require.NoError(t, err)
	assert.NotContains(t, string(sealed), "SECRET")
	again, err := s.seal("/credslots/logins/alice", plain)
	require.NoError(t, err)
	assert.NotEqual(t, sealed, again, "every seal takes a fresh nonce")

	got, err := s.open("/credslots/logins/alice", sealed)
	require.NoError(t, err)
	assert.Equal(t, plain, got)

	for name, tc := range map[string]struct {
		key   string
		value []byte
	}{
		"moved under another key": {"/credslots/logins/bob", sealed},
		"changed":                 {"/credslots/logins/alice", append(append([]byte{}, sealed[:len(sealed)-1]...), sealed[len(sealed)-1]^1)},
		"truncated":               {"/credslots/logins/alice", sealed[:10]},
		"empty":                   {"/credslots/logins/alice", nil},
		"plain JSON":              {"/credslots/logins/alice", plain},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.open(tc.key, tc.value)
			require.ErrorIs(t, err, ErrBadKey)
			assert.NotContains(t, err.Error(), "SECRET")
		})
	}
	other, err := newSealer(bytes.Repeat([]byte{8}, KeySize))
	require.NoError(t, err)
	_, err = other.open("/credslots/logins/alice", sealed)
	require.ErrorIs(t, err, ErrBadKey)
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		_, err := newSealer(make([]byte, n))
		require.ErrorIs(t, err, ErrBadKey, "%d bytes", n)
	}
}
