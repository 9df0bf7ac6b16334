package credslots

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// claudeStateDoc is a Claude Code credential file with account-independent
// state beside the account's login. extra is spliced in as more members.
func claudeStateDoc(expiry time.Time, refreshToken, mcpToken, extra string) []byte {
	doc := fmt.Sprintf(`{"claudeAiOauth":{"accessToken":"at-%s","refreshToken":%q,"expiresAt":%d,"scopes":["user:inference"]},`+
		`"mcpOAuth":{"linear|abc":{"accessToken":"mcp-at-%s","refreshToken":%q,"expiresAt":1}},"pluginSecrets":{"p":%q}%s}`,
		refreshToken, refreshToken, expiry.UnixMilli(), mcpToken, mcpToken, mcpToken, extra)
	return []byte(doc)
}

// members decodes a document's top level into raw values, for comparing.
func topLevel(t *testing.T, data []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data, &m), "%s", data)
	return m
}

func TestSwitchCarriesAccountIndependentState(t *testing.T) {
	f := newFixture(t)
	alice := claudeStateDoc(fresh, "rt-alice", "mcp-new", `,"futureKey":{"v":2},"trustedDeviceToken":"tdt-new"`)
	bob := claudeStateDoc(fresh.Add(time.Hour), "rt-bob", "mcp-old", `,"bobOnly":"kept","trustedDeviceToken":"tdt-old"`)
	writeFile(t, f.slot("alice"), alice)
	writeFile(t, f.slot("bob"), bob)
	f.link(t, "alice")
	fpBefore, ok := ComputeSlotFingerprint(f.slot("bob"))
	require.True(t, ok)

	res, err := f.m.SwitchTo("bob", "rotate")
	require.NoError(t, err)
	require.True(t, res.OK)

	live, err := os.ReadFile(f.m.LivePath())
	require.NoError(t, err)
	got, was, now := topLevel(t, live), topLevel(t, bob), topLevel(t, alice)
	assert.Equal(t, string(was["claudeAiOauth"]), string(got["claudeAiOauth"]), "the target's login, byte for byte")
	for _, key := range []string{"mcpOAuth", "pluginSecrets", "futureKey", "trustedDeviceToken"} {
		assert.Equal(t, string(now[key]), string(got[key]), "%s has its newest value", key)
	}
	assert.Equal(t, `"kept"`, string(got["bobOnly"]), "a key only the slot has is kept")
	assert.Len(t, got, 6)
	fp, ok := ComputeSlotFingerprint(f.slot("bob"))
	require.True(t, ok)
	assert.Equal(t, fpBefore, fp, "identity unchanged")
	exp, ok := f.m.SlotExpiry("bob")
	require.True(t, ok)
	assert.True(t, exp.Equal(fresh.Add(time.Hour).Truncate(time.Millisecond)), "expiry unchanged")
	prev, err := os.ReadFile(f.slot("bob") + prevSuffix)
	require.NoError(t, err)
	assert.Equal(t, bob, prev, "the slot's old content is kept as its backup")
	assert.Empty(t, tempLeftovers(t, f.dir))
}

func TestCarryBackAndForthLosesNothing(t *testing.T) {
	f := newFixture(t)
	writeFile(t, f.slot("alice"), claudeStateDoc(fresh, "rt-alice", "mcp-1", ""))
	writeFile(t, f.slot("bob"), claudeStateDoc(fresh, "rt-bob", "mcp-0", ""))
	f.link(t, "alice")
	mcp := "mcp-1"
	for i, sub := range []string{"bob", "alice", "bob", "alice", "bob"} {
		_, err := f.m.SwitchTo(sub, "rotate")
		require.NoError(t, err, "switch %d to %s", i, sub)
		// Claude Code logs in to an MCP server while on sub: it rewrites
		// the whole file and renames it over the live path.
		mcp = fmt.Sprintf("mcp-%d", i+2)
		cur, err := os.ReadFile(f.m.LivePath())
		require.NoError(t, err)
		login := topLevel(t, cur)["claudeAiOauth"]
		doc := fmt.Sprintf(`{"claudeAiOauth":%s,"mcpOAuth":{"linear|abc":{"refreshToken":%q}},"pluginSecrets":{"p":%q}}`, login, mcp, mcp)
		f.refreshAt(t, []byte(doc), time.Now().Add(time.Duration(i+1)*time.Second))
		_, err = f.m.HealDrift()
		require.NoError(t, err, "heal %d into %s", i, sub)
	}
	for _, sub := range []string{"alice", "bob"} {
		_, err := f.m.SwitchTo(sub, "check")
		require.NoError(t, err)
		live, err := os.ReadFile(f.m.LivePath())
		require.NoError(t, err)
		got := topLevel(t, live)
		assert.JSONEq(t, fmt.Sprintf(`{"linear|abc":{"refreshToken":%q}}`, mcp), string(got["mcpOAuth"]), "on %s, the newest MCP login", sub)
		assert.Equal(t, "rt-"+sub, refreshTokenOf(live), "on %s, its own login", sub)
	}
}

func TestCarryLeavesTheSlotAlone(t *testing.T) {
	t.Run("turned off", func(t *testing.T) {
		f := newFixture(t, WithCarryState(false))
		writeFile(t, f.slot("alice"), claudeStateDoc(fresh, "rt-alice", "mcp-new", ""))
		bob := claudeStateDoc(fresh, "rt-bob", "mcp-old", "")
		writeFile(t, f.slot("bob"), bob)
		f.link(t, "alice")
		_, err := f.m.SwitchTo("bob", "r")
		require.NoError(t, err)
		got, err := os.ReadFile(f.slot("bob"))
		require.NoError(t, err)
		assert.Equal(t, bob, got)
	})
	t.Run("live not a JSON object", func(t *testing.T) {
		f := newFixture(t)
		bob := claudeStateDoc(fresh, "rt-bob", "mcp-old", "")
		writeFile(t, f.slot("bob"), bob)
		f.refresh(t, []byte(`["not","an","object"]`))
		_, err := f.m.SwitchTo("bob", "r", Force())
		require.NoError(t, err)
		got, err := os.ReadFile(f.slot("bob"))
		require.NoError(t, err)
		assert.Equal(t, bob, got)
		assert.Contains(t, f.logs.String(), "not a readable JSON object")
	})
	for _, tc := range []struct {
		format Format
		doc    func(time.Time, string) []byte
	}{{GeminiCLI, geminiDoc}, {CodexCLI, codexDoc}} {
		t.Run(tc.format.Name()+" keeps whole-file slots", func(t *testing.T) {
			f := newFixture(t, WithFormat(tc.format))
			var alice map[string]any
			require.NoError(t, json.Unmarshal(tc.doc(fresh, "alice"), &alice))
			alice["extra"] = "state"
			aliceDoc, err := json.Marshal(alice)
			require.NoError(t, err)
			writeFile(t, f.slot("alice"), aliceDoc)
			bob := tc.doc(fresh, "bob")
			writeFile(t, f.slot("bob"), bob)
			f.link(t, "alice")
			_, err = f.m.SwitchTo("bob", "r")
			require.NoError(t, err)
			got, err := os.ReadFile(f.slot("bob"))
			require.NoError(t, err)
			assert.Equal(t, bob, got)
		})
	}
}

// TestCarryFaultAtEveryStep fails each file-system operation of a switch that
// carries state: the target slot holds its old content or the carried one,
// never a mix, and once it holds the carried one its old content is kept.
func TestCarryFaultAtEveryStep(t *testing.T) {
	alice := claudeStateDoc(fresh, "rt-alice", "mcp-new", "")
	bob := claudeStateDoc(fresh, "rt-bob", "mcp-old", "")
	setup := func(t *testing.T, ffs *faultFS) *fixture {
		f := newFixture(t, withFS(ffs), WithCLILocks(false))
		writeFile(t, f.slot("alice"), alice)
		writeFile(t, f.slot("bob"), bob)
		f.link(t, "alice")
		return f
	}
	counter := &faultFS{inner: disk.OS{}, failAt: -1}
	f := setup(t, counter)
	_, err := f.m.SwitchTo("bob", "r")
	require.NoError(t, err)
	carried, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	require.NotEqual(t, bob, carried)
	total := counter.count()

	for k := 1; k <= total; k++ {
		ffs := &faultFS{inner: disk.OS{}, failAt: k}
		f := setup(t, ffs)
		_, err := f.m.SwitchTo("bob", "r")
		step := ffs.log[k-1]
		got, rerr := os.ReadFile(f.slot("bob"))
		require.NoError(t, rerr)
		switch string(got) {
		case string(bob):
		case string(carried):
			prev, perr := os.ReadFile(f.slot("bob") + prevSuffix)
			require.NoError(t, perr, "k=%d (%s): the carried slot's old content is kept", k, step)
			assert.Equal(t, bob, prev, "k=%d (%s)", k, step)
		default:
			t.Fatalf("k=%d (%s): bob's slot is neither its old nor its carried content: %s", k, step, got)
		}
		if err == nil {
			assert.Equal(t, carried, got, "k=%d (%s): a switch that succeeded carried the state", k, step)
		}
		assert.Empty(t, tempLeftovers(t, f.dir), "k=%d (%s)", k, step)
	}
}

func TestHealKeepsExactBytesWithState(t *testing.T) {
	f := newFixture(t)
	writeFile(t, f.slot("bob"), claudeStateDoc(fresh, "rt-bob", "mcp-old", ""))
	f.link(t, "bob")
	_, err := f.m.SwitchTo("bob", "start")
	require.NoError(t, err)
	written := []byte("{\n  \"claudeAiOauth\": {\"accessToken\":\"at\",\"refreshToken\":\"rt-bob-2\",\"expiresAt\": " +
		fmt.Sprint(fresh.Add(time.Hour).UnixMilli()) + "},\n  \"mcpOAuth\": {\"x\": 1}\n}\n")
	f.refreshAt(t, written, time.Now().Add(time.Second))
	_, err = f.m.HealDrift()
	require.NoError(t, err)
	got, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	assert.Equal(t, written, got, "what Claude Code wrote, byte for byte")
}

// TestRestoreIntoTheActiveSlotKeepsTheLiveState restores an older login
// into the active slot, whose file is the live one: the login comes back,
// the account-independent state stays the newest (MCP refresh tokens may
// be single-use). Into a slot that is not live, or with carrying off, the
// backup's bytes come back exactly.
func TestRestoreIntoTheActiveSlotKeepsTheLiveState(t *testing.T) {
	old := claudeStateDoc(fresh, "rt-bob-0", "mcp-old", `,"trustedDeviceToken":"tdt-old","oldOnly":"kept"`)
	newer := claudeStateDoc(fresh.Add(time.Hour), "rt-bob-1", "mcp-new", `,"trustedDeviceToken":"tdt-new","futureKey":{"v":2}`)
	setup := func(t *testing.T, opts ...Option) *fixture {
		f := newFixture(t, opts...)
		writeFile(t, f.slot("bob"), old)
		writeSlot(t, f.slot("alice"), fresh, "rt-alice")
		f.link(t, "bob")
		_, err := f.m.SwitchTo("bob", "capture")
		require.NoError(t, err)
		f.refresh(t, newer)
		_, err = f.m.HealDriftTo("bob")
		require.NoError(t, err)
		got, err := os.ReadFile(f.slot("bob"))
		require.NoError(t, err)
		require.Equal(t, newer, got, "the heal took the refreshed file")
		return f
	}
	backup := ".credentials.json.bob" + prevSuffix

	t.Run("active", func(t *testing.T) {
		f := setup(t)
		require.NoError(t, f.m.Restore(backup, "bob"))
		slot, err := os.ReadFile(f.slot("bob"))
		require.NoError(t, err)
		got, was, now := topLevel(t, slot), topLevel(t, old), topLevel(t, newer)
		assert.Equal(t, string(was["claudeAiOauth"]), string(got["claudeAiOauth"]), "the backup's login, byte for byte")
		for _, key := range []string{"mcpOAuth", "pluginSecrets", "futureKey", "trustedDeviceToken"} {
			assert.Equal(t, string(now[key]), string(got[key]), "%s keeps its newest value", key)
		}
		assert.Equal(t, `"kept"`, string(got["oldOnly"]), "a key only the backup has is kept")
		prev, err := os.ReadFile(f.slot("bob") + prevSuffix)
		require.NoError(t, err)
		assert.Equal(t, newer, prev, "the replaced content is kept whole")
		fp, ok := f.m.ReadStoredFingerprint("bob")
		require.True(t, ok)
		assert.Equal(t, hashBytes([]byte("rt-bob-0")), fp)
		assert.Empty(t, tempLeftovers(t, f.dir))
	})
	t.Run("not active", func(t *testing.T) {
		f := setup(t)
		_, err := f.m.SwitchTo("alice", "rotate")
		require.NoError(t, err)
		require.NoError(t, f.m.Restore(backup, "bob"))
		slot, err := os.ReadFile(f.slot("bob"))
		require.NoError(t, err)
		assert.Equal(t, old, slot, "a slot that is not live takes the live state at its next switch")
	})
	t.Run("carrying off", func(t *testing.T) {
		f := setup(t, WithCarryState(false))
		require.NoError(t, f.m.Restore(backup, "bob"))
		slot, err := os.ReadFile(f.slot("bob"))
		require.NoError(t, err)
		assert.Equal(t, old, slot)
	})
}
