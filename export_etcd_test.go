package credslots

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoginOfAndWithLogin(t *testing.T) {
	seat := []byte(`{"mcpOAuth":{"s":1}, "claudeAiOauth":{"refreshToken":"old","expiresAt":1}, "z":true}`)
	login, err := LoginOf(ClaudeCode, []byte(`{"claudeAiOauth":{"refreshToken":"new","expiresAt":2},"mcpOAuth":{"t":2}}`))
	require.NoError(t, err)
	assert.Equal(t, `{"claudeAiOauth":{"refreshToken":"new","expiresAt":2}}`, string(login))

	got, err := WithLogin(ClaudeCode, seat, login)
	require.NoError(t, err)
	assert.Equal(t, `{"mcpOAuth":{"s":1}, "claudeAiOauth":{"refreshToken":"new","expiresAt":2}, "z":true}`, string(got))
	got, err = WithLogin(ClaudeCode, nil, login)
	require.NoError(t, err)
	assert.Equal(t, string(login), string(got))
	got, err = WithLogin(ClaudeCode, []byte(`{"mcpOAuth":{}}`), login)
	require.NoError(t, err)
	assert.Equal(t, `{"mcpOAuth":{},"claudeAiOauth":{"refreshToken":"new","expiresAt":2}}`, string(got))

	rest, ok := WithoutLogin(ClaudeCode, seat)
	require.True(t, ok)
	assert.Equal(t, `{"mcpOAuth":{"s":1},"z":true}`, string(rest))
	_, ok = WithoutLogin(ClaudeCode, login)
	assert.False(t, ok, "nothing remains")
	_, ok = WithoutLogin(CodexCLI, []byte(`{"tokens":{}}`))
	assert.False(t, ok, "Codex moves the whole file")

	for _, bad := range []string{``, `[]`, `{"mcpOAuth":{}}`, `{"claudeAiOauth":"x"}`, `{`} {
		_, err := LoginOf(ClaudeCode, []byte(bad))
		assert.Error(t, err, bad)
	}
	whole := []byte(`{"tokens":{"access_token":"a"}}`)
	got, err = LoginOf(CodexCLI, whole)
	require.NoError(t, err)
	assert.Equal(t, string(whole), string(got))
	got, err = WithLogin(CodexCLI, []byte(`{"other":1}`), whole)
	require.NoError(t, err)
	assert.Equal(t, string(whole), string(got))
}

func TestInspectLogin(t *testing.T) {
	info := InspectLogin(ClaudeCode, []byte(`{"claudeAiOauth":{"accessToken":"a","refreshToken":"r","expiresAt":1767225600000}}`))
	assert.True(t, info.HasExpiry)
	assert.Equal(t, int64(1767225600), info.Expiry.Unix())
	assert.Len(t, info.Fingerprint, 64)
	assert.Empty(t, info.Problem)
	info = InspectLogin(ClaudeCode, []byte(`{"claudeAiOauth":{"accessToken":"","refreshToken":"r","expiresAt":1}}`))
	assert.NotEmpty(t, info.Blank)
	info = InspectLogin(ClaudeCode, []byte(`nope`))
	assert.NotEmpty(t, info.Problem)
	assert.False(t, info.HasExpiry)
}

func TestLockCLITakesAndReleasesTheLocks(t *testing.T) {
	dir := t.TempDir()
	release, err := LockCLI(ClaudeCode, dir, 0)
	require.NoError(t, err)
	_, err = LockCLI(ClaudeCode, dir, 0)
	require.ErrorIs(t, err, ErrLockTimeout, "a held lock is not taken twice")
	release()
	release, err = LockCLI(ClaudeCode, dir, 0)
	require.NoError(t, err)
	release()
}
