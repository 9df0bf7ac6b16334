package etcd_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// importAll stores one login per sub through the command.
func importAll(t *testing.T, globals []string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		f := filepath.Join(t.TempDir(), "login.json")
		require.NoError(t, os.WriteFile(f, claudeLogin(sub, 0, later), 0o600))
		_, stderr, code := runCLI(t, append(globals, "import", sub, f)...)
		require.Equal(t, 0, code, stderr)
	}
}

// storedRefreshToken exports sub through the command and reads its token.
func storedRefreshToken(t *testing.T, globals []string, sub string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), sub+".json")
	_, stderr, code := runCLI(t, append(globals, "export", sub, f)...)
	require.Equal(t, 0, code, stderr)
	data, err := os.ReadFile(f)
	require.NoError(t, err)
	return refreshToken(t, data)
}

// requireChains checks each sub's refreshes: every token was refreshed at
// most once (no login used from two seats), and the pool holds the last.
func requireChains(t *testing.T, events []agentEvent, globals []string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		used := map[string]bool{}
		n := 0
		for _, e := range events {
			if e.kind != "refresh" || e.sub != sub {
				continue
			}
			require.False(t, used[e.fields[0]], "%s's token %s refreshed twice", sub, e.fields[0])
			used[e.fields[0]] = true
			n++
		}
		assert.Equal(t, fmt.Sprintf("%s-rt-%s-%d", marker, sub, n), storedRefreshToken(t, globals, sub),
			"the pool holds %s's newest login", sub)
	}
}

// Many lessees on three hosts' worth of seats share three subs; a member is
// paused past the TTL, then another is killed. No login is ever live in two seats, every refresh
// comes back, and nothing in etcd is readable as a token.
func TestManyLesseesExclusiveWhileMembersArePausedAndKilled(t *testing.T) {
	c := ownCluster(t)
	key := writeKey(t)
	globals := []string{"--endpoints", c.endpointList(), "--key-file", key, "--prefix", "/pool/"}
	subs := []string{"alice", "bob", "carol"}
	importAll(t, globals, subs...)
	log := filepath.Join(t.TempDir(), "agents.log")

	const lessees, rounds = 6, 3
	var wg sync.WaitGroup
	failures := make(chan string, lessees*rounds)
	for i := 0; i < lessees; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			seat := filepath.Join(t.TempDir(), "seat")
			for r := 0; r < rounds; r++ {
				id := fmt.Sprintf("l%d.%d", i, r)
				cmd, out := lessee(t, agentEnv(log, id, 400*time.Millisecond, 150*time.Millisecond), globals,
					"--seat", seat, "--wait", "60s")
				if err := cmd.Wait(); err != nil {
					failures <- fmt.Sprintf("%s: %v: %s", id, err, out)
				}
			}
		}(i)
	}
	// A member paused past the TTL, then another killed: a majority
	// lives throughout.
	time.Sleep(1500 * time.Millisecond)
	require.NoError(t, c.members[1].cmd.Process.Signal(syscall.SIGSTOP))
	time.Sleep(testTTL + time.Second)
	require.NoError(t, c.members[1].cmd.Process.Signal(syscall.SIGCONT))
	time.Sleep(time.Second)
	c.kill(0)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	events := readAgentLog(t, log)
	requireExclusive(t, events)
	ran := map[string]bool{}
	for _, e := range events {
		ran[e.agent] = true
	}
	assert.Len(t, ran, lessees*rounds, "every lessee ran its command")
	globals[1] = strings.Join(c.endpoints()[1:], ",")
	requireChains(t, events, globals, subs...)
	out, stderr, code := runCLI(t, append(globals, "leases")...)
	require.Equal(t, 0, code, stderr)
	assert.NotContains(t, out, "alice")
	assertNoTokenStored(t, newClient(t, c.endpoints()[1:]...))
}

// A lessee cut off from the cluster stops its command before the cluster
// can hand the login to another host; its refresh that could not be
// written back stays in its seat, and is kept as a backup, never written
// over the newer login the other host wrote.
func TestPartitionedLesseeStopsBeforeAnotherHostGetsTheLogin(t *testing.T) {
	c := sharedCluster(t)
	key := writeKey(t)
	prefix := testPrefix(t)
	direct := []string{"--endpoints", c.endpointList(), "--key-file", key, "--prefix", prefix}
	importAll(t, direct, "alice")
	px := newProxy(t, c.endpoints()[0])
	viaProxy := []string{"--endpoints", px.URL(), "--key-file", key, "--prefix", prefix}
	log := filepath.Join(t.TempDir(), "agents.log")
	seatA := filepath.Join(t.TempDir(), "seatA")

	// Host A's agent ignores SIGTERM: only SIGKILL stops it.
	a, aout := lessee(t, agentEnv(log, "A", time.Minute, 300*time.Millisecond, "AGENT_IGNORE_TERM=1"), viaProxy,
		"--seat", seatA, "--sub", "alice")
	waitFor(t, 10*time.Second, func() bool { return countEvents(t, log, "refresh", "A") >= 2 })
	cli := newClient(t, c.endpoints()...)
	imported := loginRevision(t, cli, prefix, "alice")
	require.Eventually(t, func() bool { return loginRevision(t, cli, prefix, "alice") > imported },
		5*time.Second, 100*time.Millisecond, "A writes its refreshes back")

	// Host B waits for the same sub.
	b, bout := lessee(t, agentEnv(log, "B", 1500*time.Millisecond, 300*time.Millisecond), direct,
		"--sub", "alice", "--wait", "60s")
	cut := time.Now()
	px.Cut()

	aerr := a.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, aerr, &ee, "%s", aout)
	assert.Equal(t, 128+9, ee.ExitCode(), "A's agent ignored SIGTERM and was killed: %s", aout)
	assert.Contains(t, aout.String(), "not renewed within half the TTL")
	assert.Contains(t, aout.String(), "keeps the login of alice")
	require.NoError(t, b.Wait(), "%s", bout)

	events := readAgentLog(t, log)
	requireExclusive(t, events)
	hs := holdings(events)["alice"]
	require.Len(t, hs, 2)
	assert.Equal(t, "A", hs[0].agent)
	assert.Equal(t, "B", hs[1].agent)
	assert.Less(t, hs[0].to.Sub(cut), testTTL, "A's command stopped within the TTL of the cut")
	assert.Equal(t, 1, countEvents(t, log, "term", "A"), "SIGTERM came first")

	// A's last refreshes never reached the pool: B's newest login is there.
	var lastA, lastB string
	for _, e := range events {
		if e.kind == "refresh" && e.agent == "A" {
			lastA = e.fields[1]
		}
		if e.kind == "refresh" && e.agent == "B" {
			lastB = e.fields[1]
		}
	}
	require.NotEmpty(t, lastB)
	assert.Equal(t, lastB, storedRefreshToken(t, direct, "alice"))
	data, err := os.ReadFile(filepath.Join(seatA, ".credentials.json"))
	require.NoError(t, err, "A's seat keeps what it could not write back")
	assert.Equal(t, lastA, refreshToken(t, data))

	// Back on the network, A's seat is settled: the stored login changed,
	// so A's late login is kept as a backup, not written over B's.
	_, stderr, code := runCLI(t, append(direct, "run", "--seat", seatA, "--sub", "alice", "--", "true")...)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, lastB, storedRefreshToken(t, direct, "alice"))
	out, stderr, code := runCLI(t, append(direct, "--json", "status")...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, `"backups": 1`)
	assertNoTokenStored(t, cli)
}

func TestRunExitCodes(t *testing.T) {
	c := sharedCluster(t)
	key := writeKey(t)
	globals := []string{"--endpoints", c.endpointList(), "--key-file", key, "--prefix", testPrefix(t)}
	importAll(t, globals, "alice")
	dup := filepath.Join(t.TempDir(), "dup.json")
	require.NoError(t, os.WriteFile(dup, claudeLogin("alice", 0, later), 0o600))
	_, stderr, code := runCLI(t, append(globals, "import", "bob", dup)...)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "sub alice holds this login already")
	assert.NotContains(t, stderr, marker)
	_, _, code = runCLI(t, append(globals, "run", "--", "sh", "-c", "exit 7")...)
	assert.Equal(t, 7, code, "run exits with the command's status")
	_, _, code = runCLI(t, append(globals, "run", "--sub", "nobody", "--", "true")...)
	assert.Equal(t, 2, code)
	_, _, code = runCLI(t, append(globals, "run")...)
	assert.Equal(t, 2, code, "no command is a usage error")
	_, _, code = runCLI(t, append(globals, "frobnicate")...)
	assert.Equal(t, 2, code)
	_, _, code = runCLI(t, "--endpoints", c.endpointList(), "status")
	assert.Equal(t, 2, code, "--key-file is required")

	// While alice is leased: none free (75), export refused.
	hold, hout := lessee(t, agentEnv(filepath.Join(t.TempDir(), "log"), "H", 3*time.Second, 0), globals, "--sub", "alice")
	waitFor(t, 10*time.Second, func() bool {
		out, _, _ := runCLI(t, append(globals, "leases")...)
		return strings.Contains(out, "alice")
	})
	_, _, code = runCLI(t, append(globals, "run", "--", "true")...)
	assert.Equal(t, 75, code)
	_, _, code = runCLI(t, append(globals, "run", "--wait", "300ms", "--sub", "alice", "--", "true")...)
	assert.Equal(t, 75, code)
	_, stderr, code = runCLI(t, append(globals, "export", "alice", filepath.Join(t.TempDir(), "x"))...)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "leased")
	require.NoError(t, hold.Wait(), "%s", hout)
}

func loginRevision(t *testing.T, cli *clientv3.Client, prefix, sub string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix+"logins/"+sub)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	return resp.Kvs[0].ModRevision
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not met in time")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func countEvents(t *testing.T, log, kind, agent string) int {
	if _, err := os.Stat(log); err != nil {
		return 0
	}
	n := 0
	for _, e := range readAgentLog(t, log) {
		if e.kind == kind && e.agent == agent {
			n++
		}
	}
	return n
}

// A lessee paused (SIGSTOP) past its TTL cannot stop its command itself:
// its guard does, before the cluster hands the login to another host; once
// resumed, the lessee's late login is kept as a backup, never written over
// the newer one.
func TestPausedLesseeCommandIsStoppedBeforeAnotherHostGetsTheLogin(t *testing.T) {
	c := sharedCluster(t)
	key := writeKey(t)
	prefix := testPrefix(t)
	globals := []string{"--endpoints", c.endpointList(), "--key-file", key, "--prefix", prefix}
	importAll(t, globals, "alice")
	cli := newClient(t, c.endpoints()...)
	imported := loginRevision(t, cli, prefix, "alice")
	log := filepath.Join(t.TempDir(), "agents.log")

	a, aout := lessee(t, agentEnv(log, "A", time.Minute, 300*time.Millisecond), globals, "--sub", "alice")
	require.Eventually(t, func() bool { return loginRevision(t, cli, prefix, "alice") > imported },
		10*time.Second, 100*time.Millisecond, "A writes its refreshes back")
	b, bout := lessee(t, agentEnv(log, "B", 1500*time.Millisecond, 300*time.Millisecond), globals,
		"--sub", "alice", "--wait", "60s")
	paused := time.Now()
	require.NoError(t, a.Process.Signal(syscall.SIGSTOP))
	require.NoError(t, b.Wait(), "%s", bout)
	require.NoError(t, a.Process.Signal(syscall.SIGCONT))
	aerr := a.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, aerr, &ee, "%s", aout)
	assert.Equal(t, 128+9, ee.ExitCode(), "the guard killed A's command: %s", aout)

	events := readAgentLog(t, log)
	requireExclusive(t, events)
	hs := holdings(events)["alice"]
	require.Len(t, hs, 2)
	assert.Equal(t, "A", hs[0].agent)
	assert.Less(t, hs[0].to.Sub(paused), testTTL, "A's command stopped within the TTL of the pause")
	var lastB string
	for _, e := range events {
		if e.kind == "refresh" && e.agent == "B" {
			lastB = e.fields[1]
		}
	}
	assert.Equal(t, lastB, storedRefreshToken(t, globals, "alice"), "B's newer login stays")
	st, stderr, code := runCLI(t, append(globals, "--json", "status")...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, st, `"backups": 1`, "A's late login is kept aside")
	assertNoTokenStored(t, cli)
}

// A lessee that is killed takes its command along; the next run on its seat
// writes what the command left there back (the login did not change) and
// frees the sub at once instead of after the TTL.
func TestKilledLesseeSeatIsRecoveredByTheNextRun(t *testing.T) {
	c := sharedCluster(t)
	key := writeKey(t)
	prefix := testPrefix(t)
	globals := []string{"--endpoints", c.endpointList(), "--key-file", key, "--prefix", prefix}
	importAll(t, globals, "alice")
	log := filepath.Join(t.TempDir(), "agents.log")
	seat := filepath.Join(t.TempDir(), "seat")
	a, _ := lessee(t, agentEnv(log, "A", time.Minute, 200*time.Millisecond), globals, "--seat", seat, "--sub", "alice")
	waitFor(t, 10*time.Second, func() bool { return countEvents(t, log, "refresh", "A") >= 2 })
	killed := time.Now()
	require.NoError(t, a.Process.Kill())
	_ = a.Wait()
	time.Sleep(500 * time.Millisecond)
	events := readAgentLog(t, log)
	last := holdings(events)["alice"][0].to
	assert.Less(t, last.Sub(killed), time.Second, "the command died with its lessee")
	var lastRefresh string
	for _, e := range events {
		if e.kind == "refresh" {
			lastRefresh = e.fields[1]
		}
	}
	data, err := os.ReadFile(filepath.Join(seat, ".credentials.json"))
	require.NoError(t, err)
	require.Equal(t, lastRefresh, refreshToken(t, data), "the seat holds the command's last refresh")

	start := time.Now()
	_, stderr, code := runCLI(t, append(globals, "run", "--seat", seat, "--sub", "alice", "--", "true")...)
	require.Equal(t, 0, code, stderr)
	assert.Less(t, time.Since(start), testTTL, "the dead lease was ended, not waited out")
	assert.Equal(t, lastRefresh, storedRefreshToken(t, globals, "alice"))
	out, _, _ := runCLI(t, append(globals, "leases")...)
	assert.NotContains(t, out, "alice")
}
