package etcd_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/gptme/credslots/etcd"
)

// marker is in every token the tests make, so that a scan of etcd finds any
// token stored in the clear.
const marker = "SECRET"

// testTTL is the lessees' session TTL: short, so that partitions and kills
// play out within seconds.
const testTTL = 6 * time.Second

// writeKey writes a fresh 32-byte key file, 0600.
func writeKey(t *testing.T) string {
	t.Helper()
	key := make([]byte, etcd.KeySize)
	_, err := rand.Read(key)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "pool.key")
	require.NoError(t, os.WriteFile(path, key, 0o600))
	return path
}

// claudeLogin is a Claude Code credential file for sub's nth token pair.
func claudeLogin(sub string, n int, expiry time.Time) []byte {
	return []byte(fmt.Sprintf(`{"claudeAiOauth":{"accessToken":"%s-at-%s-%d","refreshToken":"%s-rt-%s-%d","expiresAt":%d,"scopes":["user:inference"]}}`,
		marker, sub, n, marker, sub, n, expiry.UnixMilli()))
}

// refreshToken reads claudeAiOauth.refreshToken.
func refreshToken(t *testing.T, doc []byte) string {
	t.Helper()
	var v struct {
		OAuth struct {
			RefreshToken string `json:"refreshToken"`
		} `json:"claudeAiOauth"`
	}
	require.NoError(t, json.Unmarshal(doc, &v), "%s", doc)
	return v.OAuth.RefreshToken
}

func newClient(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// newPool opens a pool under a prefix of its own, with the key in keyFile.
func newPool(t *testing.T, cli *clientv3.Client, prefix, keyFile string, opts ...etcd.Option) *etcd.Pool {
	t.Helper()
	key, err := etcd.ReadKeyFile(keyFile)
	require.NoError(t, err)
	p, err := etcd.Open(cli, append([]etcd.Option{etcd.WithKey(key), etcd.WithPrefix(prefix), etcd.WithTTL(testTTL)}, opts...)...)
	require.NoError(t, err)
	return p
}

// testPrefix is a prefix no other test uses.
func testPrefix(t *testing.T) string {
	return "/test/" + strings.ReplaceAll(t.Name(), "/", "_") + "/"
}

// assertNoTokenStored reads every key of the cluster and fails on any value
// (or key) that shows a token or a credential field in the clear.
func assertNoTokenStored(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "\x00", clientv3.WithFromKey())
	require.NoError(t, err)
	require.NotEmpty(t, resp.Kvs)
	for _, kv := range resp.Kvs {
		for _, word := range []string{marker, "claudeAiOauth", "refreshToken", "accessToken", "mcp"} {
			require.NotContains(t, string(kv.Key)+string(kv.Value), word, "key %s", kv.Key)
		}
	}
}

// cliEnv is the environment of a re-executed credslots-etcd.
func cliEnv(extra ...string) []string {
	return append(append(os.Environ(), roleEnv+"=cli", "CREDSLOTS_ETCD_TTL="+testTTL.String()), extra...)
}

// runCLI runs credslots-etcd with args and returns its output and exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = cliEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errb.String(), code
}

// agentMain stands in for a CLI: it reads its seat's login every 20 ms
// and logs what it holds, refreshes it every AGENT_REFRESH (a new token pair
// numbered one higher, written the way Claude Code writes, with a seat key
// of its own beside it), and stops after AGENT_FOR or on SIGTERM (unless
// AGENT_IGNORE_TERM).
func agentMain() int {
	seat := os.Getenv("CREDSLOTS_SEAT")
	sub := os.Getenv("CREDSLOTS_SUB")
	if os.Getenv("CLAUDE_SECURESTORAGE_CONFIG_DIR") != seat || seat == "" || sub == "" {
		fmt.Fprintln(os.Stderr, "agent: no seat in the environment")
		return 3
	}
	id := os.Getenv("AGENT_ID")
	logf, err := os.OpenFile(os.Getenv("AGENT_LOG"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return 3
	}
	defer logf.Close()
	line := func(format string, args ...any) {
		_, _ = fmt.Fprintf(logf, format+" %d\n", append(args, time.Now().UnixNano())...)
	}
	runFor, _ := time.ParseDuration(os.Getenv("AGENT_FOR"))
	every, _ := time.ParseDuration(os.Getenv("AGENT_REFRESH"))
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	file := filepath.Join(seat, ".credentials.json")
	end := time.After(runFor)
	var refresh <-chan time.Time
	if every > 0 {
		refresh = time.Tick(every)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		data, err := os.ReadFile(file)
		var doc map[string]json.RawMessage
		if err != nil || json.Unmarshal(data, &doc) != nil {
			line("noseat %s %s", sub, id)
			return 4
		}
		var oauth map[string]any
		_ = json.Unmarshal(doc["claudeAiOauth"], &oauth)
		rt, _ := oauth["refreshToken"].(string)
		line("alive %s %s %s", sub, id, rt)
		select {
		case <-end:
			line("done %s %s", sub, id)
			return 0
		case <-sigs:
			line("term %s %s", sub, id)
			if os.Getenv("AGENT_IGNORE_TERM") == "" {
				return 143
			}
		case <-refresh:
			n, _ := strconv.Atoi(rt[strings.LastIndexByte(rt, '-')+1:])
			next := string(claudeLogin(sub, n+1, time.Now().Add(4*time.Hour)))
			var nd map[string]json.RawMessage
			_ = json.Unmarshal([]byte(next), &nd)
			doc["claudeAiOauth"] = nd["claudeAiOauth"]
			doc["mcpOAuth"] = json.RawMessage(fmt.Sprintf(`{"server":{"refreshToken":"%s-mcp-%s"}}`, marker, id))
			out, _ := json.Marshal(doc)
			tmp := file + ".tmp." + id
			if os.WriteFile(tmp, out, 0o600) != nil || os.Rename(tmp, file) != nil {
				return 5
			}
			line("refresh %s %s %s %s-rt-%s-%d", sub, id, rt, marker, sub, n+1)
		case <-tick.C:
		}
	}
}

// agentEvent is one line of the agents' log.
type agentEvent struct {
	kind, sub, agent string
	fields           []string
	at               time.Time
}

func readAgentLog(t *testing.T, path string) []agentEvent {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []agentEvent
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		require.GreaterOrEqual(t, len(w), 4, "log line %q", sc.Text())
		ns, err := strconv.ParseInt(w[len(w)-1], 10, 64)
		require.NoError(t, err)
		out = append(out, agentEvent{kind: w[0], sub: w[1], agent: w[2], fields: w[3 : len(w)-1], at: time.Unix(0, ns)})
	}
	require.NoError(t, sc.Err())
	return out
}

// interval is when one agent held one sub's login.
type interval struct {
	agent    string
	from, to time.Time
}

// holdings lists, per sub, when each agent held its login, by start.
func holdings(events []agentEvent) map[string][]interval {
	byKey := map[string]*interval{}
	subOf := map[string]string{}
	for _, e := range events {
		k := e.sub + " " + e.agent
		iv, ok := byKey[k]
		if !ok {
			iv = &interval{agent: e.agent, from: e.at}
			byKey[k] = iv
			subOf[k] = e.sub
		}
		if e.at.After(iv.to) {
			iv.to = e.at
		}
	}
	out := map[string][]interval{}
	for k, iv := range byKey {
		out[subOf[k]] = append(out[subOf[k]], *iv)
	}
	for _, ivs := range out {
		sort.Slice(ivs, func(i, j int) bool { return ivs[i].from.Before(ivs[j].from) })
	}
	return out
}

// requireExclusive fails when two agents held one sub's login at once.
func requireExclusive(t *testing.T, events []agentEvent) {
	t.Helper()
	for sub, ivs := range holdings(events) {
		for i := 1; i < len(ivs); i++ {
			require.True(t, ivs[i].from.After(ivs[i-1].to),
				"sub %s live in two seats: agent %s until %s, agent %s from %s", sub,
				ivs[i-1].agent, ivs[i-1].to.Format(time.StampMicro), ivs[i].agent, ivs[i].from.Format(time.StampMicro))
		}
	}
}

// agentEnv is the environment of a lessee whose command is an agent.
func agentEnv(log, id string, runFor, refresh time.Duration, extra ...string) []string {
	return cliEnv(append([]string{"AGENT_LOG=" + log, "AGENT_ID=" + id, "AGENT_FOR=" + runFor.String(),
		"AGENT_REFRESH=" + refresh.String()}, extra...)...)
}

// lessee starts credslots-etcd run with an agent as its command.
func lessee(t *testing.T, env []string, globals []string, runArgs ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	args := append(append(append([]string{}, globals...), "run"), runArgs...)
	// The command inherits the lessee's environment: env makes it an agent.
	args = append(args, "--", "env", roleEnv+"=agent", os.Args[0])
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = env
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &errb, &errb
	require.NoError(t, cmd.Start())
	return cmd, &errb
}
