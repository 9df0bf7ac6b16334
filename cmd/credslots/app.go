package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gptme/credslots"
)

// Exit codes.
const (
	exitOK      = 0
	exitRefused = 1 // refused, deferred, unhealthy, nothing to capture
	exitError   = 2 // an error, or bad usage
)

const usageText = `usage: credslots [--tool claude|gemini|codex] [--dir D] [--subs a,b] [--grace 5m]
                 [--lock-glob PATTERN]... [--busy-proc NAME]... [--no-cli-locks]
                 [--json] [-v] COMMAND [ARGS]

commands:
  status                               health snapshot of the creds dir (table or JSON)
  check                                the same for monitoring: exit 0 healthy, 1 problems
  switch SUB [--reason R] [--force]    point the live symlink at SUB's slot
  heal SUB|--auto [--force] [--dry-run]
                                       copy a refreshed live file into its slot;
                                       --auto heals into the sub the journal
                                       says was active, refusing when unsure
  capture SUB                          record SUB's identity after a fresh login
  log [-n N]                           show the last N journal records (default 20)

exit codes: 0 done, 1 refused/deferred/unhealthy, 2 error or bad usage
`

// app is one invocation of the command. Tests set now, stdout and stderr.
type app struct {
	now            func() time.Time
	stdout, stderr io.Writer

	tool       credslots.Format
	dir        string
	subs       []string
	grace      time.Duration
	globs      []string
	procs      []string
	noCLILocks bool
	json       bool
	verbose    bool
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func (a *app) run(args []string) int {
	cmd, rest, err := a.parseGlobal(args)
	if err != nil {
		return a.usageError(err)
	}
	commands := map[string]func([]string) int{
		"status":  a.cmdStatus,
		"check":   a.cmdCheck,
		"switch":  a.cmdSwitch,
		"heal":    a.cmdHeal,
		"capture": a.cmdCapture,
		"log":     a.cmdLog,
	}
	run, ok := commands[cmd]
	if !ok {
		return a.usageError(fmt.Errorf("unknown command %q", cmd))
	}
	return run(rest)
}

// parseGlobal reads the global flags up to the command name.
func (a *app) parseGlobal(args []string) (string, []string, error) {
	fs := flag.NewFlagSet("credslots", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tool := fs.String("tool", "claude", "credential format: claude, gemini or codex")
	fs.StringVar(&a.dir, "dir", "", "creds dir (default: the tool's, e.g. ~/.claude)")
	subs := fs.String("subs", "", "comma-separated subscriptions (default: discovered from the slot files)")
	fs.DurationVar(&a.grace, "grace", credslots.DefaultGrace, "treat tokens expiring within this as stale")
	var globs, procs stringList
	fs.Var(&globs, "lock-glob", "busy-signal file pattern; repeatable")
	fs.Var(&procs, "busy-proc", "defer while a process with this executable name runs (e.g. codex); repeatable")
	fs.BoolVar(&a.noCLILocks, "no-cli-locks", false, "do not hold the CLI's own refresh locks during changes")
	fs.BoolVar(&a.json, "json", false, "print one JSON object on stdout")
	fs.BoolVar(&a.verbose, "v", false, "log what happens to stderr")
	if err := fs.Parse(args); err != nil {
		return "", nil, err
	}
	a.globs, a.procs = globs, procs
	for _, f := range credslots.Formats() {
		if f.Name() == *tool {
			a.tool = f
		}
	}
	if a.tool == nil {
		return "", nil, fmt.Errorf("unknown --tool %q (claude, gemini or codex)", *tool)
	}
	if a.grace < 0 {
		return "", nil, fmt.Errorf("--grace must not be negative")
	}
	if *subs != "" {
		for _, s := range strings.Split(*subs, ",") {
			if s = strings.TrimSpace(s); s != "" {
				a.subs = append(a.subs, s)
			}
		}
	}
	if fs.NArg() == 0 {
		return "", nil, errors.New("no command given")
	}
	return fs.Arg(0), fs.Args()[1:], nil
}

// parseCommand parses a command's flags, which may come before or after its
// positional arguments, and checks the number of positionals.
func parseCommand(fs *flag.FlagSet, args []string, minPos, maxPos int) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) < minPos || len(pos) > maxPos {
		return nil, fmt.Errorf("%s: wrong number of arguments", fs.Name())
	}
	return pos, nil
}

func (a *app) usageError(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(a.stdout, usageText)
		return exitOK
	}
	if a.json {
		a.printJSON(map[string]any{"ok": false, "error": "usage", "message": err.Error()})
	}
	fmt.Fprintf(a.stderr, "credslots: %v\n\n%s", err, usageText)
	return exitError
}

// resolveDir returns the creds dir: --dir, or the tool's default in $HOME.
func (a *app) resolveDir() (string, error) {
	if a.dir != "" {
		return a.dir, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no --dir and no home directory: %w", err)
	}
	return filepath.Join(home, a.tool.DefaultDir()), nil
}

// options are the Manager options for dir, shared by every command and by
// the dry-run copy.
func (a *app) options(dir string, subs []string) []credslots.Option {
	opts := []credslots.Option{
		credslots.WithCredsDir(dir),
		credslots.WithSubscriptions(subs...),
		credslots.WithFormat(a.tool),
		credslots.WithGrace(a.grace),
		credslots.WithClock(a.now),
		credslots.WithCLILocks(!a.noCLILocks),
	}
	var guards []func() []string
	if len(a.globs) > 0 {
		guards = append(guards, credslots.GlobLockGuard(a.globs...))
	}
	if len(a.procs) > 0 {
		guards = append(guards, credslots.ProcessGuard(a.procs...))
	}
	if len(guards) > 0 {
		opts = append(opts, credslots.WithLockGuard(func() []string {
			var busy []string
			for _, g := range guards {
				busy = append(busy, g()...)
			}
			return busy
		}))
	}
	if a.verbose {
		opts = append(opts, credslots.WithLogger(slog.New(slog.NewTextHandler(a.stderr, nil))))
	}
	return opts
}

// manager builds the Manager for the resolved dir and subs.
func (a *app) manager(extra ...credslots.Option) (*credslots.Manager, error) {
	dir, err := a.resolveDir()
	if err != nil {
		return nil, err
	}
	subs := a.subs
	if len(subs) == 0 {
		subs, err = credslots.DiscoverSubscriptions(dir, a.tool.DefaultSlotTemplate())
		if err != nil {
			return nil, err
		}
		if len(subs) == 0 {
			return nil, fmt.Errorf("no slot files found in %s; pass --subs", dir)
		}
	}
	return credslots.New(append(a.options(dir, subs), extra...)...)
}

// errorWord is the stable word --json reports for an error.
func errorWord(err error) string {
	words := []struct {
		err  error
		word string
	}{
		{credslots.ErrDeferred, "deferred"},
		{credslots.ErrNotFresh, "not_fresh"},
		{credslots.ErrIdentityDrift, "identity_drift"},
		{credslots.ErrSlotMissing, "slot_missing"},
		{credslots.ErrUnknownSubscription, "unknown_subscription"},
		{credslots.ErrNoDrift, "no_drift"},
		{credslots.ErrUnhealable, "unhealable"},
		{credslots.ErrLiveDrifted, "live_drifted"},
		{credslots.ErrLiveChanged, "live_changed"},
		{credslots.ErrLockTimeout, "lock_timeout"},
		{credslots.ErrLockLost, "lock_lost"},
		{credslots.ErrAmbiguous, "ambiguous"},
		{credslots.ErrTooLarge, "too_large"},
		{credslots.ErrInvalidConfig, "invalid_config"},
	}
	for _, w := range words {
		if errors.Is(err, w.err) {
			return w.word
		}
	}
	return "error"
}

// refusal reports whether err is a refusal (exit 1) rather than a failure.
func refusal(err error) bool {
	w := errorWord(err)
	return w != "error" && w != "invalid_config"
}

// printJSON writes v as one JSON object on stdout.
func (a *app) printJSON(v any) {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(a.stderr, "credslots: encode JSON: %v\n", err)
	}
}

// fail reports an error that stops the command: exit 2.
func (a *app) fail(err error) int {
	if a.json {
		a.printJSON(map[string]any{"ok": false, "error": errorWord(err), "message": err.Error()})
	}
	fmt.Fprintf(a.stderr, "credslots: %v\n", err)
	return exitError
}
