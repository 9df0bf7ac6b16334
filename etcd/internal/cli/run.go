package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/gptme/credslots"
	"github.com/gptme/credslots/etcd"
)

// seatPoll is how often run looks for a refresh the command wrote.
const seatPoll = 250 * time.Millisecond

type runOptions struct {
	seat, sub, seatEnv string
	wait               time.Duration
	cmd                []string
}

func parseRun(args []string) (*runOptions, string) {
	var o runOptions
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.seat, "seat", "", "")
	fs.StringVar(&o.sub, "sub", "", "")
	fs.DurationVar(&o.wait, "wait", 0, "")
	fs.StringVar(&o.seatEnv, "seat-env", "", "")
	if err := fs.Parse(args); err != nil {
		return nil, "run: " + err.Error()
	}
	o.cmd = fs.Args()
	if len(o.cmd) == 0 {
		return nil, "run: no command (run [flags] -- CMD [ARGS...])"
	}
	if o.wait < 0 {
		return nil, "run: --wait must not be negative"
	}
	return &o, ""
}

// seatEnvFor is the variable that points each CLI at its seat.
func seatEnvFor(f credslots.Format) string {
	switch f {
	case credslots.ClaudeCode:
		return "CLAUDE_SECURESTORAGE_CONFIG_DIR"
	case credslots.CodexCLI:
		return "CODEX_HOME"
	}
	return ""
}

// privateSeat makes a new seat directory of this user's, 0700.
func privateSeat() (string, error) {
	base := filepath.Join(os.TempDir(), fmt.Sprintf("credslots-etcd-%d", os.Getuid()))
	if err := os.Mkdir(base, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	fi, err := os.Lstat(base)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 || (ok && int(st.Uid) != os.Getuid()) {
		return "", fmt.Errorf("credslots-etcd: %s is not a private directory of this user", base)
	}
	return os.MkdirTemp(base, "seat-")
}

func doRun(ctx context.Context, pool *etcd.Pool, format credslots.Format, o *runOptions, stderr io.Writer) int {
	envName := o.seatEnv
	if envName == "" {
		envName = seatEnvFor(format)
	}
	if envName == "" {
		return usageError(stderr, "run: --seat-env is required for "+format.Name())
	}
	seat, private := o.seat, false
	if seat == "" {
		s, err := privateSeat()
		if err != nil {
			fmt.Fprintln(stderr, "credslots-etcd:", err)
			return exitUsage
		}
		seat, private = s, true
	}
	lctx := ctx
	var lopts []etcd.LeaseOption
	if o.sub != "" {
		lopts = append(lopts, etcd.LeaseSub(o.sub))
	}
	if o.wait > 0 {
		var cancel context.CancelFunc
		lctx, cancel = context.WithTimeout(ctx, o.wait)
		defer cancel()
		lopts = append(lopts, etcd.LeaseWait())
	}
	lease, err := pool.Lease(lctx, seat, lopts...)
	if err != nil {
		if private {
			_ = os.RemoveAll(seat) // this run's alone: at most its lock file
		}
		fmt.Fprintln(stderr, err)
		if errors.Is(err, etcd.ErrNoFreeSub) || errors.Is(err, etcd.ErrLeased) {
			return exitTempFail
		}
		return exitUsage
	}
	code := supervise(lease, format, envName, o.cmd, stderr)
	if err := lease.Release(); err != nil {
		fmt.Fprintln(stderr, err)
		if errors.Is(err, etcd.ErrPending) {
			fmt.Fprintf(stderr, "credslots-etcd: seat %s keeps the login of %s until a later run with --seat %s\n", lease.Seat(), lease.Sub(), lease.Seat())
			private = false
		}
	}
	if private {
		_ = os.RemoveAll(seat)
	}
	return code
}

// supervise runs the command with the lease's seat, writes each refresh it
// makes back, forwards signals, and stops it (SIGTERM, then SIGKILL before
// the lease can expire, at once when the cluster ended it) once the lease
// is lost. Unless run is the
// terminal's foreground job, the command runs in a process group of its
// own (see commandAttr): signals go to the whole group, and whatever of it
// is left when the command exits is stopped before the lease is released.
// It returns the command's exit status (128+N for a signal N).
func supervise(lease *etcd.Lease, format credslots.Format, envName string, argv []string, stderr io.Writer) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envName+"="+lease.Seat(), "CREDSLOTS_SUB="+lease.Sub(), "CREDSLOTS_SEAT="+lease.Seat())
	// The command dies with this process: a crashed lessee never leaves it
	// running with a login whose lease nobody renews (what it started is
	// the guard's to kill, by its group).
	attr, ownGroup := commandAttr()
	cmd.SysProcAttr = attr
	if !ownGroup {
		becomeSubreaper() // what the command orphans stays below run
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	runtime.LockOSThread() // Pdeathsig follows the thread that started the child
	err := cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		fmt.Fprintln(stderr, "credslots-etcd: start:", err)
		return 127
	}
	pid := cmd.Process.Pid
	pgid := 0 // the command's own group, led by it; 0 for run's
	if ownGroup {
		pgid = pid
	}
	signalCommand := func(sig syscall.Signal) {
		if pgid != 0 {
			signalGroup(pgid, sig)
		} else {
			_ = cmd.Process.Signal(sig)
		}
	}
	g := startGuard(pid, pgid, stderr)
	allowed := func() time.Duration { return time.Until(lease.Expires().Add(-lease.TTL() / 4)) }
	g.allow(allowed())
	// The command is reaped only once its group is stopped and the guard
	// is done (see waitExited): until then no signal can reach another
	// process by its number.
	exited := make(chan struct{})
	go func() { waitExited(pid); close(exited) }()
	go func() {
		t := time.NewTicker(guardTick)
		defer t.Stop()
		for {
			select {
			case <-exited:
				return
			case <-t.C:
				g.allow(allowed())
			}
		}
	}()

	// Stopping on a lost lease runs on its own, so that a write-back
	// blocked on an unreachable cluster never delays it.
	go func() {
		select {
		case <-exited:
			return
		case <-lease.Done():
		}
		if errors.Is(lease.Err(), etcd.ErrLeaseLost) {
			fmt.Fprintf(stderr, "credslots-etcd: %v; stopping the command\n", lease.Err())
		}
		signalCommand(syscall.SIGTERM)
		// SIGKILL a quarter TTL before the cluster may end the lease; at
		// once when it has ended it already (see Lease.Expires).
		kill := time.NewTimer(max(allowed(), 0))
		defer kill.Stop()
		select {
		case <-exited:
		case <-kill.C:
			signalCommand(syscall.SIGKILL)
		}
	}()

	seatFile := filepath.Join(lease.Seat(), format.DefaultLiveName())
	last := stamp(seatFile)
	poll := time.NewTicker(seatPoll)
	defer poll.Stop()
	for running := true; running; {
		select {
		case <-exited:
			running = false
		case s := <-sigs:
			if sig, ok := s.(syscall.Signal); ok {
				signalCommand(sig)
			}
		case <-poll.C:
			if now := stamp(seatFile); now != last {
				last = now
				if err := lease.Sync(); err != nil {
					fmt.Fprintln(stderr, err)
				}
			}
		}
	}
	// What the command left running in its group would hold the login past
	// the release: asked to stop, then killed before the lease may end.
	grace := min(max(allowed(), 0), groupGrace)
	if pgid != 0 && stopGroup(pgid, grace) || pgid == 0 && stopDescendants(g.pid(), grace) {
		fmt.Fprintln(stderr, "credslots-etcd: the command left processes running: stopped them before the release")
	}
	g.stop()
	werr := cmd.Wait()
	var ee *exec.ExitError
	switch {
	case werr == nil:
		return 0
	case errors.As(werr, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	default:
		fmt.Fprintln(stderr, "credslots-etcd:", werr)
		return exitFailure
	}
}

// stamp is what changes when a file is replaced or rewritten.
type fileStamp struct {
	ino   uint64
	size  int64
	mtime time.Time
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fileStamp{ino: ino, size: fi.Size(), mtime: fi.ModTime()}
}
