package credslots

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var crashLoops = flag.Int("crashloops", 200, "SIGKILL iterations in TestCrashLoop")

// Child processes: the test binary re-executed with these variables set runs
// random mutations on a creds dir instead of the tests.
const (
	envChild = "CREDSLOTS_TEST_CHILD"
	envDir   = "CREDSLOTS_TEST_DIR"
	envOps   = "CREDSLOTS_TEST_OPS"
	envSeed  = "CREDSLOTS_TEST_SEED"
)

func TestMain(m *testing.M) {
	if os.Getenv(envLockChild) != "" {
		os.Exit(runLockChild())
	}
	if os.Getenv(envLeaseLoop) != "" {
		os.Exit(runLeaseLoop())
	}
	if os.Getenv(envLeaseChild) != "" {
		os.Exit(runLeaseChild())
	}
	if os.Getenv(envChild) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

var stressSubs = []string{"bob", "alice", "erik"}

func stressManager(dir string, opts ...Option) (*Manager, error) {
	return New(append([]Option{
		WithCredsDir(dir), WithSubscriptions(stressSubs...), WithClock(fixedClock),
		WithLockTimeout(30 * time.Second),
		// Keep every backup, so that the loss checks see all of them.
		WithBackupGenerations(1 << 20),
		// A child killed while it holds Claude Code's lock directories
		// leaves them for their stale time, as a killed CLI does; that wait
		// has its own test (TestCLILockLeftByAKilledHolder).
		WithCLILocks(false),
	}, opts...)...)
}

// tolerated reports whether err is an outcome a mutation may legitimately
// have while other processes change the same dir: a refusal, or a lost race.
func tolerated(err error) bool {
	return err == nil || isRefusal(err) || errors.Is(err, ErrLockTimeout)
}

// randomMutation runs one random switch, heal or capture.
func randomMutation(m *Manager, r *rand.Rand) error {
	sub := stressSubs[r.IntN(len(stressSubs))]
	switch n := r.IntN(10); {
	case n < 3:
		_, err := m.SwitchTo(sub, "stress")
		return err
	case n < 4:
		_, err := m.SwitchTo(sub, "stress", Force())
		return err
	case n < 7:
		_, err := m.HealDriftTo(sub)
		return err
	default:
		_, err := m.CaptureSlotFingerprint(sub)
		return err
	}
}

func runChild() int {
	m, err := stressManager(os.Getenv(envDir))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	fmt.Println("ready")
	ops, _ := strconv.Atoi(os.Getenv(envOps))
	seed, _ := strconv.ParseUint(os.Getenv(envSeed), 10, 64)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < ops; i++ {
		if err := randomMutation(m, r); !tolerated(err) {
			fmt.Fprintln(os.Stderr, "child: unexpected error:", err)
			return 3
		}
		fmt.Print(".")
	}
	return 0
}

func childCmd(t *testing.T, dir string, ops int, seed uint64) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=mutate", envDir+"="+dir,
		envOps+"="+strconv.Itoa(ops), envSeed+"="+strconv.FormatUint(seed, 10))
	cmd.Stderr = os.Stderr
	return cmd
}

// stressDir prepares three fresh slots with captured identities and the live
// symlink on bob.
func stressDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	m, err := stressManager(dir)
	require.NoError(t, err)
	for _, sub := range stressSubs {
		writeSlot(t, m.SlotPath(sub), fresh, "rt-"+sub+"-0")
	}
	_, err = m.SwitchTo("bob", "setup")
	require.NoError(t, err)
	for _, sub := range stressSubs {
		_, err := m.CaptureSlotFingerprint(sub)
		require.NoError(t, err)
	}
	return dir
}

// credentialFiles maps each live, slot and backup path under dir (backup
// generations included) to the refresh token it holds; a file that does not
// parse fails the test.
func credentialFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	var names []string
	for _, sub := range []string{"", privateDirName + "/" + backupsDirName} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if sub != "" && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		for _, de := range ents {
			if !de.IsDir() {
				names = append(names, path.Join(sub, de.Name()))
			}
		}
	}
	out := map[string]string{}
	for _, name := range names {
		base := path.Base(name)
		if isTempName(base) || strings.HasSuffix(base, ".lock") || strings.HasSuffix(base, ".fingerprint.json") ||
			strings.HasPrefix(base, ".cli-") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err, name)
		c := ClaudeCode.parse(data)
		require.True(t, c.hasExpiry(), "%s is torn or malformed: %s", name, c.problem)
		out[name] = refreshTokenOf(data)
	}
	return out
}

func holds(files map[string]string, token string) bool {
	for _, tok := range files {
		if tok == token {
			return true
		}
	}
	return false
}

// cliWriter simulates the CLI: it replaces the live path with a new regular
// file (temp + rename), or writes through the symlink into the slot it
// points at (temp + rename of the target), and reports the newest token.
func cliWriter(dir string, i int, through bool) (string, error) {
	token := fmt.Sprintf("rt-cli-%04d", i)
	doc := claudeDoc(fresh, token)
	dest := filepath.Join(dir, DefaultLiveName)
	if through {
		if target, err := os.Readlink(dest); err == nil {
			dest = filepath.Join(dir, target)
		}
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".cli-%d.tmp", i))
	if err := os.WriteFile(tmp, doc, 0o600); err != nil {
		return "", err
	}
	return token, os.Rename(tmp, dest)
}

func TestConcurrentMutatorsWritersAndReaders(t *testing.T) {
	dir := stressDir(t)
	writes, goroutines, perChild := 150, 3, 150
	if testing.Short() {
		writes, perChild = 40, 40
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 64)

	// Reader: the live path never disappears and always parses.
	var reads atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		live := filepath.Join(dir, DefaultLiveName)
		for !stop.Load() {
			data, err := os.ReadFile(live)
			if err != nil {
				errs <- fmt.Errorf("reader: %w", err)
				return
			}
			if c := ClaudeCode.parse(data); !c.hasExpiry() || c.fingerprint == "" {
				errs <- fmt.Errorf("reader: torn or malformed live content (%s)", c.problem)
				return
			}
			reads.Add(1)
		}
	}()

	// Mutators: goroutines with managers of their own, and child processes.
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			m, err := stressManager(dir)
			if err != nil {
				errs <- err
				return
			}
			r := rand.New(rand.NewPCG(seed, 2))
			for !stop.Load() {
				if err := randomMutation(m, r); !tolerated(err) {
					errs <- fmt.Errorf("mutator: %w", err)
					return
				}
			}
		}(uint64(g))
	}
	var children []*exec.Cmd
	for c := 0; c < 2; c++ {
		cmd := childCmd(t, dir, perChild, uint64(100+c))
		require.NoError(t, cmd.Start())
		children = append(children, cmd)
	}

	// The simulated CLI.
	r := rand.New(rand.NewPCG(7, 7))
	var newest string
	for i := 1; i <= writes; i++ {
		tok, err := cliWriter(dir, i, r.IntN(10) < 3)
		require.NoError(t, err)
		newest = tok
		time.Sleep(time.Duration(r.IntN(1500)) * time.Microsecond)
	}
	for _, cmd := range children {
		assert.NoError(t, cmd.Wait(), "child process reported an unexpected error")
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Positive(t, reads.Load())

	files := credentialFiles(t, dir)
	assert.True(t, holds(files, newest), "the newest token %s survives in live, a slot or a backup: %v", newest, files)
	assert.Empty(t, tempLeftovers(t, dir))
}

func TestCrashLoop(t *testing.T) {
	loops := *crashLoops
	if testing.Short() {
		loops = 20
	}
	dir := stressDir(t)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	killed, completed := 0, 0
	for i := 0; i < loops; i++ {
		if i%3 == 0 {
			// The CLI refreshes: heals get something to do.
			_, err := cliWriter(dir, i, false)
			require.NoError(t, err)
		}
		before := credentialFiles(t, dir)

		cmd := childCmd(t, dir, 1<<30, r.Uint64())
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		ready := make([]byte, len("ready\n"))
		_, err = io.ReadFull(out, ready)
		require.NoError(t, err, "child started")
		// A mutation takes a few milliseconds: kill somewhere in the first few.
		time.Sleep(time.Duration(r.IntN(15000)) * time.Microsecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		dots, _ := io.ReadAll(out)
		completed += len(dots)
		err = cmd.Wait()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				killed++
			} else {
				t.Fatalf("iteration %d: child exited by itself: %v", i, err)
			}
		}

		// Invariants after the kill.
		_, err = os.Lstat(filepath.Join(dir, DefaultLiveName))
		require.NoError(t, err, "iteration %d: live path exists", i)
		after := credentialFiles(t, dir) // every credential file parses
		for name, tok := range before {
			// Backups included: no backup is ever overwritten.
			require.True(t, holds(after, tok), "iteration %d: token of %s lost", i, name)
		}
		for _, p := range tempLeftovers(t, dir) {
			base := filepath.Base(p)
			require.True(t, isTempName(base) || strings.HasPrefix(base, ".cli-"), "leftover %s is not a temp name", base)
		}

		// The next operation succeeds.
		m, err := stressManager(dir)
		require.NoError(t, err)
		info, err := m.DetectLiveSlotDrift()
		require.NoError(t, err)
		if info.Drift {
			_, err = m.HealDriftTo(stressSubs[r.IntN(3)], Force())
		} else {
			_, err = m.SwitchTo(stressSubs[r.IntN(3)], "after crash", Force())
		}
		require.NoError(t, err, "iteration %d: the next operation succeeds", i)
	}
	t.Logf("%d iterations, %d children killed mid-run, %d mutations completed before the kills", loops, killed, completed)
	assert.Greater(t, killed, loops/2, "most children were killed while mutating")

	// The next mutation past the sweep age leaves no temporaries.
	m, err := stressManager(dir, withSweepAge(0))
	require.NoError(t, err)
	_, err = m.SwitchTo("bob", "sweep", Force())
	require.NoError(t, err)
	for _, p := range tempLeftovers(t, dir) {
		assert.True(t, strings.HasPrefix(filepath.Base(p), ".cli-"), "%s left after sweep", p)
	}
}
