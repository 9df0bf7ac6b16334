//go:build unix

package credslots

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// leaseProc is a running lease child.
type leaseProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func startLeaseChild(t *testing.T, dir, seat string, env ...string) *leaseProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{envLeaseChild + "=1", envDir + "=" + dir, envLeaseSeat + "=" + seat}, env...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &leaseProc{cmd: cmd, stdin: stdin, lines: make(chan string, 8)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	})
	return p
}

// next returns the child's next line starting with prefix.
func (p *leaseProc) next(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("lease child ended before %q", prefix)
			}
			if strings.HasPrefix(line, prefix) {
				return strings.TrimSpace(strings.TrimPrefix(line, prefix))
			}
			if strings.HasPrefix(line, "refused") && prefix != "refused" {
				return "refused"
			}
		case <-timeout:
			t.Fatalf("no %q from the lease child", prefix)
		}
	}
}

func (p *leaseProc) kill9(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	_ = p.cmd.Wait()
}

func TestLeaseContentionBetweenProcesses(t *testing.T) {
	f := leaseFixture(t)
	var procs []*leaseProc
	got := map[string]int{}
	for i := 0; i < 4; i++ { // all at once
		procs = append(procs, startLeaseChild(t, f.dir, filepath.Join(t.TempDir(), "seat")))
	}
	for _, p := range procs {
		got[p.next(t, "leased")]++
	}
	assert.Equal(t, map[string]int{"alice": 1, "bob": 1, "erik": 1, "refused": 1}, got,
		"three subs, four processes: each sub to one, the fourth refused")
	for _, p := range procs {
		_ = p.stdin.Close()
		_ = p.cmd.Wait()
	}
	infos, err := f.m.Leases()
	require.NoError(t, err)
	for _, info := range infos {
		assert.False(t, info.Held, info.Sub)
		assert.NotNil(t, info.Released, info.Sub)
	}
}

func TestLeaseOutlivesAKilledLessee(t *testing.T) {
	for _, spawn := range []bool{false, true} {
		t.Run(fmt.Sprintf("inheriting child %v", spawn), func(t *testing.T) {
			f := leaseFixture(t)
			seat := filepath.Join(t.TempDir(), "seat")
			env := []string{envLeaseSub + "=bob", envLeaseWrite + "=rt-bob-newest"}
			if spawn {
				env = append(env, envLeaseSpawn+"=1")
			}
			p := startLeaseChild(t, f.dir, seat, env...)
			var sleeper int
			if spawn {
				pid, err := strconv.Atoi(p.next(t, "spawned"))
				require.NoError(t, err)
				sleeper = pid
				t.Cleanup(func() { _ = syscall.Kill(sleeper, syscall.SIGKILL) })
			}
			require.Equal(t, "bob", p.next(t, "leased"))
			p.kill9(t)

			if spawn {
				// The inheriting child still holds the lease: the login
				// stays in its one seat.
				_, err := f.m.Lease(context.Background(), filepath.Join(t.TempDir(), "seat"), LeaseSub("bob"))
				require.ErrorIs(t, err, ErrLeased)
				_, err = f.m.SwitchTo("bob", "x", Force())
				require.ErrorIs(t, err, ErrLeased)
				assert.True(t, f.m.leaseHeld("bob"))
				require.NoError(t, syscall.Kill(sleeper, syscall.SIGKILL))
				require.Eventually(t, func() bool { return !f.m.leaseHeld("bob") }, 10*time.Second, 10*time.Millisecond)
			}
			assert.False(t, f.m.leaseHeld("bob"), "the lease ended with its last holder")
			before, err := os.ReadFile(f.slot("bob"))
			require.NoError(t, err)
			assert.Equal(t, "rt-bob-0", refreshTokenOf(before), "nothing wrote the seat's login back yet")

			// The next lease recovers the dead seat first.
			l, err := f.m.Lease(context.Background(), filepath.Join(t.TempDir(), "seat2"), LeaseSub("bob"))
			require.NoError(t, err)
			slot, err := os.ReadFile(f.slot("bob"))
			require.NoError(t, err)
			assert.Equal(t, "rt-bob-newest", refreshTokenOf(slot), "the dead seat's newer login went back to the slot")
			prev, err := os.ReadFile(f.slot("bob") + prevSuffix)
			require.NoError(t, err)
			assert.Equal(t, before, prev, "the old slot is kept as its backup")
			old, err := os.ReadFile(filepath.Join(seat, DefaultLiveName))
			if err == nil {
				assert.Empty(t, refreshTokenOf(old), "the login left the dead seat")
			} else {
				assert.True(t, os.IsNotExist(err))
			}
			seatNow, err := os.ReadFile(filepath.Join(l.Seat(), DefaultLiveName))
			require.NoError(t, err)
			assert.Equal(t, "rt-bob-newest", refreshTokenOf(seatNow), "the new seat gets the newest login")
			require.NoError(t, l.Release())
			entries, err := f.m.Journal()
			require.NoError(t, err)
			var recovered bool
			for _, e := range entries {
				recovered = recovered || e.Op == opRecover && e.Sub == "bob" && e.Seat == seat
			}
			assert.True(t, recovered, "the recovery is journaled")
		})
	}
}

// TestLeaseCrashLoop runs lessees in parallel over three subs, each
// refreshing its login once per lease against a single-use token "server",
// and kills them with SIGKILL at random moments (in a lease, a refresh, a
// write-back, a release). No refresh token is ever presented twice, and in
// the end every slot holds its account's newest token.
func TestLeaseCrashLoop(t *testing.T) {
	dir := t.TempDir()
	m, err := New(WithCredsDir(dir), WithSubscriptions("bob", "alice", "erik"), WithClock(fixedClock), WithCLILocks(false))
	require.NoError(t, err)
	for _, sub := range m.Subscriptions() {
		writeSlot(t, m.SlotPath(sub), fresh, "rt-"+sub+"-0")
	}
	used := t.TempDir()
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envLeaseLoop+"="+used, envDir+"="+dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		return cmd
	}
	// Sample every seat while they run: a login found in two seats in two
	// sweeps in a row is live in two places (one sweep alone may straddle a
	// move from one seat to the next).
	stop, twice := make(chan struct{}), make(chan []string, 1)
	go func() {
		var found []string
		prev := map[string]bool{}
		for {
			select {
			case <-stop:
				twice <- found
				return
			default:
			}
			entries, _ := os.ReadDir(m.seatsDir())
			holders := map[string][]string{}
			for _, e := range entries {
				data, err := os.ReadFile(filepath.Join(m.seatsDir(), e.Name(), DefaultLiveName))
				if err != nil {
					continue
				}
				if sub, _, ok := strings.Cut(strings.TrimPrefix(refreshTokenOf(data), "rt-"), "-"); ok {
					holders[sub] = append(holders[sub], e.Name())
				}
			}
			now := map[string]bool{}
			for sub, seats := range holders {
				if len(seats) > 1 {
					key := sub + " in " + strings.Join(seats, ", ")
					now[key] = true
					if prev[key] {
						found = append(found, key)
					}
				}
			}
			prev = now
			time.Sleep(time.Millisecond)
		}
	}()
	const n = 5
	procs := make([]*exec.Cmd, n)
	done := make([]chan error, n)
	for i := range procs {
		procs[i] = start()
		done[i] = make(chan error, 1)
		go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(procs[i], done[i])
	}
	deadline := time.Now().Add(6 * time.Second)
	kills := 0
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(20+kills%7*15) * time.Millisecond)
		i := kills % n
		select {
		case err := <-done[i]:
			t.Fatalf("lessee %d ended by itself: %v (stderr: %s)", i, err, procs[i].Stderr)
		default:
		}
		_ = procs[i].Process.Signal(syscall.SIGKILL)
		<-done[i]
		kills++
		procs[i] = start()
		done[i] = make(chan error, 1)
		go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(procs[i], done[i])
	}
	for i := range procs {
		_ = procs[i].Process.Signal(syscall.SIGKILL)
		<-done[i]
	}
	close(stop)
	assert.Empty(t, <-twice, "no login live in two seats at once")
	marks, err := os.ReadDir(used)
	require.NoError(t, err)
	spent := map[string]int{}
	for _, e := range marks {
		sub, num, _ := strings.Cut(e.Name(), "-")
		k, err := strconv.Atoi(num)
		require.NoError(t, err)
		spent[sub] = max(spent[sub], k+1)
	}
	t.Logf("%d kills, %d refreshes: %v", kills, len(marks), spent)
	require.Greater(t, len(marks), n, "the lessees made progress")

	// One more lease of each sub recovers what the last killed lessees left.
	for _, sub := range m.Subscriptions() {
		l, err := m.Lease(context.Background(), filepath.Join(t.TempDir(), "seat"), LeaseSub(sub))
		require.NoError(t, err)
		require.NoError(t, l.Release())
		slot, err := os.ReadFile(m.SlotPath(sub))
		require.NoError(t, err)
		var got int
		_, err = fmt.Sscanf(refreshTokenOf(slot), "rt-"+sub+"-%d", &got)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, got, spent[sub], "%s: the slot holds a token newer than every one spent", sub)
	}
}
