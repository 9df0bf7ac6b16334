package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gptme/credslots"
)

// Exit codes (SPEC section 15), the same for every command.
const (
	exitOK      = 0
	exitRefused = 1 // refused, deferred, unhealthy, nothing to do
	exitError   = 2 // an error, or bad usage
)

// app is one invocation of the command. Tests set now, stdout, stderr and ctx.
type app struct {
	now            func() time.Time
	stdout, stderr io.Writer
	// stdin is what observe reads; nil means os.Stdin.
	stdin io.Reader
	// ctx ends a long-running command (watch); main cancels it on SIGINT
	// and SIGTERM. Nil means never.
	ctx context.Context

	// The global flags as given; defaults are set by newApp's flag set.
	toolName    string
	dir         string
	subsFlag    string
	grace       time.Duration
	globs       stringList
	procs       stringList
	noCLILocks  bool
	lockTimeout time.Duration
	json        bool
	verbose     bool
	showVersion bool

	// Resolved from the flags by finish.
	tool credslots.Format
	subs []string

	// cmd is the command being run, for usage errors.
	cmd *command
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// globalFlags defines the global flags on fs, bound to a. Each takes its
// current value as default, so that defining them again on a command's flag
// set (global flags are accepted after the command too) keeps what was
// parsed before the command.
func (a *app) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.toolName, "tool", a.toolName, "credential `format`: claude, gemini or codex")
	fs.StringVar(&a.dir, "dir", a.dir, "creds `dir` (default: the tool's, ~/.claude, ~/.gemini or ~/.codex)")
	fs.StringVar(&a.subsFlag, "subs", a.subsFlag, "comma-separated `subs` (default: discovered from the slot files)")
	fs.Var(newDuration(&a.grace, a.grace), "grace", "treat a token expiring within this `duration` as stale")
	fs.Var(&a.globs, "lock-glob", "busy-signal file `pattern`: its matches defer changes; repeatable")
	fs.Var(&a.procs, "busy-proc", "defer changes while a process with this executable `name` runs (e.g. codex); repeatable")
	fs.BoolVar(&a.noCLILocks, "no-cli-locks", a.noCLILocks, "do not hold the CLI's own refresh locks during changes")
	fs.Var(newDuration(&a.lockTimeout, a.lockTimeout), "lock-timeout", "wait at most this `duration` in all for the package's and the CLI's locks")
	fs.BoolVar(&a.json, "json", a.json, "print one JSON object on stdout (watch: one a line)")
	fs.BoolVar(&a.verbose, "v", a.verbose, "log what the library does to stderr")
	fs.BoolVar(&a.showVersion, "version", a.showVersion, "print the version and exit")
}

// newGlobalFlagSet is the flag set of the global flags, with their defaults.
func (a *app) newGlobalFlagSet() *flag.FlagSet {
	a.toolName, a.grace, a.lockTimeout = "claude", credslots.DefaultGrace, credslots.DefaultLockTimeout
	fs := flag.NewFlagSet("credslots", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.globalFlags(fs)
	return fs
}

func (a *app) run(args []string) int {
	if a.ctx == nil {
		a.ctx = context.Background()
	}
	gfs := a.newGlobalFlagSet()
	// A usage error found before --json is parsed is still reported as
	// JSON when --json is anywhere on the command line.
	for _, arg := range args {
		if arg == "--" {
			break
		}
		switch arg {
		case "--json", "-json", "--json=true", "-json=true":
			a.json = true
		}
	}
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return a.printHelp(globalHelp())
		}
		return a.usageError(flagError(err, gfs))
	}
	if a.showVersion {
		return a.printVersion()
	}
	if gfs.NArg() == 0 {
		return a.usageError(errors.New("no command given"))
	}
	name, rest := gfs.Arg(0), gfs.Args()[1:]
	cmd := lookup(name)
	if cmd == nil {
		return a.usageError(unknownCommand(name))
	}
	a.cmd = cmd
	o := &opts{}
	cfs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	cfs.SetOutput(io.Discard)
	if cmd.flags != nil {
		cmd.flags(cfs, o)
	}
	a.globalFlags(cfs)
	pos, err := parseInterleaved(cfs, rest)
	if errors.Is(err, flag.ErrHelp) {
		return a.printHelp(commandHelp(cmd))
	}
	if err != nil {
		return a.usageError(flagError(err, cfs))
	}
	if a.showVersion {
		return a.printVersion()
	}
	if len(pos) < cmd.min || len(pos) > cmd.max {
		return a.usageError(fmt.Errorf("%s: wrong number of arguments (%s)", cmd.name, argCount(cmd)))
	}
	if err := a.finish(); err != nil {
		return a.usageError(err)
	}
	return cmd.run(a, o, pos)
}

// argCount says how many positional arguments cmd takes.
func argCount(cmd *command) string {
	switch {
	case cmd.max == 0:
		return "it takes none"
	case cmd.max == maxArgs:
		return fmt.Sprintf("it takes at least %d", cmd.min)
	case cmd.min == cmd.max:
		return fmt.Sprintf("it takes %d", cmd.min)
	default:
		return fmt.Sprintf("it takes %d to %d", cmd.min, cmd.max)
	}
}

// parseInterleaved parses flags that may come before or after the
// positional arguments, and returns the positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		// After "--" everything is positional.
		if len(args) > fs.NArg() && args[len(args)-fs.NArg()-1] == "--" {
			return append(pos, fs.Args()...), nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// finish checks the global flags and resolves the tool and subs.
func (a *app) finish() error {
	a.tool = nil
	for _, f := range credslots.Formats() {
		if f.Name() == a.toolName {
			a.tool = f
		}
	}
	if a.tool == nil {
		if near := nearest(a.toolName, []string{"claude", "gemini", "codex"}); near != "" {
			return fmt.Errorf("unknown --tool %q (claude, gemini or codex); did you mean %s?", a.toolName, near)
		}
		return fmt.Errorf("unknown --tool %q (claude, gemini or codex)", a.toolName)
	}
	if a.grace < 0 {
		return errors.New("--grace must not be negative")
	}
	a.subs = nil
	for _, s := range strings.Split(a.subsFlag, ",") {
		if s = strings.TrimSpace(s); s != "" {
			a.subs = append(a.subs, s)
		}
	}
	return nil
}

// resolveDir returns the creds dir: --dir, or where the tool's CLI keeps
// it ($CLAUDE_SECURESTORAGE_CONFIG_DIR, $CLAUDE_CONFIG_DIR, $CODEX_HOME,
// $GEMINI_CLI_HOME, else in the home directory).
func (a *app) resolveDir() (string, error) {
	if a.dir != "" {
		return a.dir, nil
	}
	dir := a.tool.DefaultDir()
	if !filepath.IsAbs(dir) {
		return "", errors.New("no --dir, no variable naming the creds dir, and no home directory")
	}
	return dir, nil
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
		credslots.WithLockTimeout(a.lockTimeout),
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

// manager builds the Manager for the resolved dir and subs. The creds dir
// must exist. With add non-empty, that sub is configured too (the add
// command names a sub whose slot does not exist yet).
func (a *app) manager(add string) (*credslots.Manager, error) {
	var extra []string
	if add != "" {
		extra = append(extra, add)
	}
	return a.managerWith(extra)
}

// managerWith is manager with every sub of extra configured too.
func (a *app) managerWith(extra []string) (*credslots.Manager, error) {
	dir, err := a.resolveDir()
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("creds dir %s: no such directory", dir)
	case err != nil:
		return nil, fmt.Errorf("creds dir %s: %w", dir, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("creds dir %s: not a directory", dir)
	}
	subs := append([]string(nil), a.subs...)
	if len(subs) == 0 {
		subs, err = credslots.DiscoverSubscriptions(dir, a.tool.DefaultSlotTemplate())
		if err != nil {
			return nil, err
		}
	}
	for _, add := range extra {
		if !contains(subs, add) {
			subs = append(subs, add)
		}
	}
	if len(subs) == 0 {
		return nil, a.noSlots(dir)
	}
	return credslots.New(a.options(dir, subs)...)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// errorWords are the stable words --json reports for an error, with the
// exit code each gets. The first that matches wins.
var errorWords = []struct {
	err  *error
	word string
	code int
}{
	{&credslots.ErrDeferred, "deferred", exitRefused},
	{&credslots.ErrNotFresh, "not_fresh", exitRefused},
	{&credslots.ErrIdentityDrift, "identity_drift", exitRefused},
	{&credslots.ErrSlotMissing, "slot_missing", exitRefused},
	{&credslots.ErrUnknownSubscription, "unknown_subscription", exitRefused},
	{&credslots.ErrNoDrift, "no_drift", exitRefused},
	{&credslots.ErrUnhealable, "unhealable", exitRefused},
	{&credslots.ErrLiveDrifted, "live_drifted", exitRefused},
	{&credslots.ErrLiveChanged, "live_changed", exitRefused},
	{&credslots.ErrLockTimeout, "lock_timeout", exitRefused},
	{&credslots.ErrLockLost, "lock_lost", exitRefused},
	{&credslots.ErrAmbiguous, "ambiguous", exitRefused},
	{&credslots.ErrTooLarge, "too_large", exitRefused},
	{&credslots.ErrNoCandidate, "no_candidate", exitRefused},
	{&credslots.ErrInvalidated, "invalidated", exitRefused},
	{&credslots.ErrOlderLogin, "older_login", exitRefused},
	// After identity_drift, which it also is: listed so that its text is
	// cleaned from messages.
	{&credslots.ErrNewLogin, "new_login", exitRefused},
	{&credslots.ErrActiveSub, "active", exitRefused},
	{&credslots.ErrLeased, "leased", exitRefused},
	{&credslots.ErrNoFreeSub, "no_free_sub", exitRefused},
	{&credslots.ErrInvalidConfig, "invalid_config", exitError},
}

// classify returns err's word and exit code: "error" and 2 for anything
// that is not a refusal.
func classify(err error) (string, int) {
	var ns *notSetUp
	if errors.As(err, &ns) && ns.live.Kind == "file" {
		return "not_set_up", exitRefused
	}
	for _, w := range errorWords {
		if errors.Is(err, *w.err) {
			return w.word, w.code
		}
	}
	return "error", exitError
}

// message is err's text, cleaned (see clean).
func message(err error) string { return clean(err.Error(), err) }

// clean removes from s, a message or reason the library wrote, its
// "credslots: " prefixes, which the command adds once itself, and the text
// of err's sentinel repeated at the end ("invalid config: ...: invalid
// config"). err may be nil.
func clean(s string, err error) string {
	s = strings.ReplaceAll(s, ": credslots: ", ": ")
	s = strings.ReplaceAll(s, "(credslots: ", "(")
	for strings.HasPrefix(s, "credslots: ") {
		s = strings.TrimPrefix(s, "credslots: ")
	}
	s = speak(s, "")
	if err == nil {
		return s
	}
	for _, w := range errorWords {
		if !errors.Is(err, *w.err) {
			continue
		}
		if suffix := ": " + (*w.err).Error(); strings.HasSuffix(s, suffix) && len(s) > len(suffix) {
			s = strings.TrimSuffix(s, suffix)
		}
	}
	return s
}

// printJSON writes v as one JSON object on stdout.
func (a *app) printJSON(v any) {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(a.stderr, "credslots: encode JSON: %v\n", err)
	}
}

// fields are extra JSON fields of an error report (sub, action, ...).
type fields map[string]any

// errorJSON is the one JSON shape of every error: ok false, a stable error
// word and the reason, plus what the command adds.
func (a *app) errorJSON(word, reason string, extra fields) {
	out := map[string]any{"ok": false, "error": word, "reason": reason}
	for k, v := range extra {
		out[k] = v
	}
	a.printJSON(out)
}

// usageError reports bad usage: exit 2, the usage of the command (or of
// credslots) on stderr.
func (a *app) usageError(err error) int {
	msg := err.Error()
	if a.json {
		a.errorJSON("usage", msg, nil)
	}
	fmt.Fprintf(a.stderr, "credslots: %s\n\n", msg)
	if a.cmd != nil {
		fmt.Fprintf(a.stderr, "%s\nRun 'credslots help %s' for its flags.\n", synopsis(a.cmd), a.cmd.name)
	} else {
		fmt.Fprint(a.stderr, shortUsage)
	}
	return exitError
}

// refuse reports a refusal or error with its word and exit code.
func (a *app) refuse(err error, reason string, extra fields) int {
	word, code := classify(err)
	if reason == "" {
		reason = err.Error()
	}
	reason = clean(reason, err)
	if sub, ok := extra["sub"].(string); ok && sub != "" {
		reason = strings.ReplaceAll(reason, "SUB", sub)
	}
	if a.json {
		a.errorJSON(word, reason, extra)
	}
	if code == exitRefused {
		what := "refused"
		if a.cmd != nil {
			what = a.cmd.name + " refused"
		}
		fmt.Fprintf(a.stderr, "credslots: %s (%s): %s\n", what, word, printable(reason))
	} else {
		fmt.Fprintf(a.stderr, "credslots: %s\n", printable(reason))
	}
	return code
}

// fail reports err, a refusal (exit 1) or an error (exit 2).
func (a *app) fail(err error) int {
	return a.refuse(err, "", nil)
}
