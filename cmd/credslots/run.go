package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/gptme/credslots"
)

// exitTempFail is run's exit code when no sub is free within --wait
// (EX_TEMPFAIL of sysexits.h).
const exitTempFail = 75

// syncPoll is how often run looks at the seat even without a file event
// (a file system fsnotify cannot watch, or an event lost).
const syncPoll = 2 * time.Second

// seatVar is the variable each CLI reads its seat from, as traced: Claude
// Code 2.1.220 and later read .credentials.json from
// CLAUDE_SECURESTORAGE_CONFIG_DIR (older releases only honour
// CLAUDE_CONFIG_DIR: pass --seat-env CLAUDE_CONFIG_DIR); Codex CLI reads
// auth.json from CODEX_HOME; Gemini CLI reads .gemini/oauth_creds.json
// below GEMINI_CLI_HOME.
func seatVar(tool credslots.Format) string {
	switch tool.Name() {
	case "codex":
		return "CODEX_HOME"
	case "gemini":
		return "GEMINI_CLI_HOME"
	default:
		return "CLAUDE_SECURESTORAGE_CONFIG_DIR"
	}
}

// setupError reports an error met before CMD starts: exit 2.
func (a *app) setupError(err error) int {
	reason := message(err)
	if a.json {
		a.errorJSON("error", reason, fields{"action": "run"})
	}
	fmt.Fprintf(a.stderr, "credslots: run: %s\n", printable(reason))
	return exitError
}

func (a *app) cmdRun(o *opts, pos []string) int {
	if o.wait < 0 {
		return a.usageError(errors.New("run: --wait must not be negative"))
	}
	if len(pos) == 0 {
		return a.usageError(errors.New("run: no command given (credslots run [flags] -- CMD [ARGS...])"))
	}
	m, err := a.manager("")
	if err != nil {
		return a.setupError(err)
	}
	env := seatVar(a.tool)
	if o.seatEnv != "" {
		env = o.seatEnv
	}
	// home is what goes into the CLI's environment; seat is the directory
	// its credential file is read from (for Gemini CLI, home's .gemini).
	home, private := o.seat, false
	if home == "" {
		home, err = newPrivateSeat(m)
		if err != nil {
			return a.setupError(err)
		}
		private = true
	} else if home, err = filepath.Abs(home); err != nil {
		return a.setupError(err)
	}
	seat := home
	if a.tool.Name() == "gemini" && o.seatEnv == "" {
		seat = filepath.Join(home, filepath.Base(a.tool.DefaultDir())) // GEMINI_CLI_HOME/.gemini
	}
	keepSeat := false // a failed release leaves the newest login there
	if private {
		defer func() {
			if !keepSeat {
				removeSeat(home)
			}
		}()
	}

	var leaseOpts []credslots.LeaseOption
	if o.sub != "" {
		leaseOpts = append(leaseOpts, credslots.LeaseSub(o.sub))
	}
	ctx := a.ctx
	if o.wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.wait)
		defer cancel()
		leaseOpts = append(leaseOpts, credslots.LeaseWait())
	}
	l, err := m.Lease(ctx, seat, leaseOpts...)
	switch {
	case errors.Is(err, credslots.ErrNoFreeSub):
		if a.json {
			from, _ := m.ActiveSubscription()
			a.errorJSON("no_free_sub", message(err), fields{"action": "run", "sub": o.sub, "from": from})
		}
		fmt.Fprintf(a.stderr, "credslots: run: %s\n", printable(message(err)))
		return exitTempFail
	case err != nil:
		return a.setupError(err)
	}
	if kept := l.Kept(); kept != "" {
		// The only copy of a login the seat held: say where it went.
		fmt.Fprintf(a.stderr, "credslots: run: %s held another login than the one %s's slot handed out; it is kept as %s (credslots backups says whose it is; credslots restore %s NAME brings it back)\n",
			printable(l.Seat()), printable(l.Sub()), printable(kept), printable(kept))
	}
	code := a.runLeased(l, filepath.Base(m.LivePath()), env, home, pos)
	if err := l.Release(); err != nil {
		keepSeat = true // the next lease of the sub recovers it
		fmt.Fprintf(a.stderr, "credslots: run: release of %s: %s\n", printable(l.Sub()), printable(message(err)))
	} else if private && stillHeld(m, l) {
		keepSeat = true // a process CMD left holds the lease and may refresh there; the next lease recovers it
	}
	return code
}

// newPrivateSeat makes a fresh private seat directory under
// "<creds dir>/.credslots/seats/".
// The creds dir's real path is used: a seat path never runs through a
// symlink (a creds dir that is one, as a dotfiles manager makes it, too).
func newPrivateSeat(m *credslots.Manager) (string, error) {
	dir, err := filepath.EvalSymlinks(m.CredsDir())
	if err != nil {
		return "", fmt.Errorf("resolve creds dir %s: %w", m.CredsDir(), err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return filepath.Join(dir, ".credslots", credslots.SeatsDirName,
		strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(b[:])), nil
}

// stillHeld reports whether a process that inherited the released lease's
// lock still holds it.
func stillHeld(m *credslots.Manager, l *credslots.Lease) bool {
	leases, err := m.Leases()
	if err != nil {
		return true // unknown: keep the seat; the next lease removes it
	}
	for _, li := range leases {
		if li.Sub == l.Sub() && li.Held {
			return true
		}
	}
	return false
}

// removeSeat removes a private seat once its lease is released, with the
// legacy lock directory Claude Code makes beside it.
func removeSeat(seat string) {
	_ = os.RemoveAll(seat)
	if fi, err := os.Lstat(seat + ".lock"); err == nil && fi.IsDir() {
		_ = os.Remove(seat + ".lock")
	}
}

// childEnviron is run's environment for CMD before the seat goes in: for
// Claude Code with the seat in another variable (--seat-env
// CLAUDE_CONFIG_DIR), an inherited CLAUDE_SECURESTORAGE_CONFIG_DIR is
// dropped, since 2.1.220 and later read the credentials there, set or
// empty (~/.claude), not in the seat: CMD would run on another login than
// the lease's.
func childEnviron(tool credslots.Format, env string) []string {
	all := os.Environ()
	if tool.Name() != "claude" || env == seatVar(tool) {
		return all
	}
	out := all[:0:0]
	for _, kv := range all {
		if !strings.HasPrefix(kv, seatVar(tool)+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// runLeased starts CMD with the seat in its environment and the lease's
// lock inherited, forwards signals, writes back each refresh as it lands,
// and returns CMD's exit status.
func (a *app) runLeased(l *credslots.Lease, file, env, home string, argv []string) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, a.stdout, a.stderr
	cmd.Env = append(childEnviron(a.tool, env),
		env+"="+home,
		"CREDSLOTS_SUB="+l.Sub(),
		"CREDSLOTS_SEAT="+l.Seat(),
		"CREDSLOTS_LEASE_FD=3",
	)
	if a.tool.Name() == "gemini" {
		cmd.Env = append(cmd.Env, "GEMINI_FORCE_FILE_STORAGE=true")
	}
	// The lease's lock: CMD and everything it starts hold the lease until
	// the last of them exits.
	cmd.ExtraFiles = []*os.File{l.File()}
	// When stdout is not a file (a pipe copied by a goroutine), a
	// background process CMD left keeps it open: run returns when CMD
	// exits, not when the last copy of its output closes.
	cmd.WaitDelay = time.Second

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(a.stderr, "credslots: run: start %s: %s\n", printable(argv[0]), printable(err.Error()))
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return 127
		}
		return 126
	}
	if a.verbose {
		fmt.Fprintf(a.stderr, "credslots: run: %s leased to %s (pid %d)\n", printable(l.Sub()), printable(l.Seat()), cmd.Process.Pid)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	stop := a.followSeat(l, file)
	defer stop()
	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case err := <-done:
			if errors.Is(err, exec.ErrWaitDelay) {
				err = nil // its output is still held open by a process it left
			}
			return exitStatus(err)
		}
	}
}

// exitStatus is the status CMD ended with: its exit code, or 128 plus the
// signal that killed it, as a shell reports it.
func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return exitError
}

// followSeat writes every refresh that lands in the seat back into the
// slot: on each change fsnotify reports to the seat's credential file
// (named file; settled for a moment), and every syncPoll in any case. The
// lock directories a write-back takes in the seat are not changes to
// follow: woken by them, it would take the CLI's locks there again and
// again while CMD runs. The returned function stops it.
func (a *app) followSeat(l *credslots.Lease, file string) func() {
	quit, finished := make(chan struct{}), make(chan struct{})
	fw, err := fsnotify.NewWatcher()
	var events chan fsnotify.Event
	if err == nil {
		if err := fw.Add(l.Seat()); err == nil {
			events = fw.Events
		}
	}
	go func() {
		defer close(finished)
		poll := time.NewTicker(syncPoll)
		defer poll.Stop()
		settle := time.NewTimer(time.Hour)
		settle.Stop()
		// said is the failure last printed: one that repeats on every look
		// (a seat login of another account) is said once, not every
		// syncPoll into CMD's terminal, until the write-back works or
		// fails otherwise.
		said := ""
		sync := func() {
			err := l.Sync()
			if err == nil {
				said = ""
				return
			}
			if line := fmt.Sprintf("credslots: run: write-back of %s: %s\n", printable(l.Sub()), printable(message(err))); line != said {
				said = line
				fmt.Fprint(a.stderr, line)
			}
		}
		for {
			select {
			case <-quit:
				settle.Stop()
				return
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				if filepath.Base(ev.Name) == file {
					settle.Reset(50 * time.Millisecond)
				}
			case <-settle.C:
				sync()
			case <-poll.C:
				sync()
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
		if fw != nil {
			_ = fw.Close()
		}
	}
}

func (a *app) cmdLeases(_ *opts, _ []string) int {
	m, err := a.manager("")
	if err != nil {
		return a.fail(err)
	}
	leases, err := m.Leases()
	if err != nil {
		return a.fail(err)
	}
	if a.json {
		a.printJSON(map[string]any{"ok": true, "action": "leases", "leases": leases})
		return exitOK
	}
	if len(leases) == 0 {
		fmt.Fprintln(a.stdout, "no leases")
		return exitOK
	}
	now := a.now()
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SUB\tSTATE\tSEAT\tPID\tHOST\tSINCE")
	for _, l := range leases {
		state := "held"
		switch {
		case l.Held:
		case l.Released != nil:
			state = "released"
		default:
			state = "ended" // its holders died; the next lease recovers the seat
		}
		since := "-"
		if !l.Since.IsZero() {
			since = ago(l.Since, now)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", printable(l.Sub), state, printable(dash(l.Seat)), l.PID, printable(dash(l.Host)), since)
	}
	_ = tw.Flush()
	return exitOK
}
