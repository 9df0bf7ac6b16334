package main

import (
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strings"
	"time"
)

// opts holds every command's own flags; each command defines the ones it
// takes.
type opts struct {
	reason   string
	force    bool
	next     bool
	auto     bool
	dryRun   bool
	until    string
	forDur   time.Duration
	n        int
	noHeal   bool
	retry    time.Duration
	debounce time.Duration
	// loginSettle is how long watch lets a drifted live file and
	// .claude.json settle before it decides between a refresh and a login.
	loginSettle time.Duration
	clear       bool
	seat        string
	sub         string
	seatEnv     string
	wait        time.Duration
}

// command is one subcommand: its help, its flags and what it runs.
type command struct {
	name     string
	args     string // the synopsis after the name
	summary  string // one line, for the command list
	about    string // what it does, for its own help
	exit     string // its exit codes
	min, max int    // positional arguments
	flags    func(fs *flag.FlagSet, o *opts)
	run      func(a *app, o *opts, pos []string) int
}

// maxArgs is the max of a command that takes any number of arguments.
const maxArgs = 1 << 20

// commands in the order help lists them.
var commands []*command

func init() {
	commands = []*command{
		{
			name: "init", args: "NAME", min: 1, max: 1,
			summary: "start from the one login you have: keep it as slot NAME",
			about: "Sets up a creds dir that has no slots yet: the live file, the login the CLI\n" +
				"wrote, becomes slot NAME, its identity (and, for Claude Code, its account)\n" +
				"is recorded, and the live path becomes a symlink to the slot, which holds\n" +
				"the login byte for byte. Refuses a dir that has slots already (use\n" +
				"credslots add NAME for a further login).",
			exit: "0 set up, 1 refused, 2 error",
			run:  (*app).cmdInit,
		},
		{
			name: "status", summary: "health snapshot of the creds dir, as a table or JSON",
			about: "Shows the live path, the active sub and, for every sub, its expiry, freshness,\n" +
				"identity, file mode, and whether it rests or was marked invalid; then the\n" +
				"problems, if any. Changes nothing.",
			exit: "0, or 2 on error",
			run:  (*app).cmdStatus,
		},
		{
			name: "check", summary: "the same, for monitoring: exit 0 healthy, 1 problems",
			about: "Prints \"ok\" when the creds dir is healthy, else its problems. Changes nothing.",
			exit:  "0 healthy, 1 problems, 2 error",
			run:   (*app).cmdCheck,
		},
		{
			name: "switch", args: "SUB|--next [--reason TEXT] [--force]", max: 1,
			summary: "point the live symlink at SUB's slot, or at the best usable other sub",
			about: "Points the live symlink at SUB's slot. With --next, picks the best\n" +
				"usable sub other than the active one: fresh, not resting, not invalid, the\n" +
				"most headroom (see observe), then the latest expiry. A refusal\n" +
				"changes nothing.",
			exit: "0 switched, 1 refused or deferred, 2 error",
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.StringVar(&o.reason, "reason", "manual switch via credslots", "the `text` recorded in the journal and passed to the on-switch hook")
				fs.BoolVar(&o.force, "force", false, "override busy-signals, identity drift, live drift and a server rejection (never freshness)")
				fs.BoolVar(&o.next, "next", false, "switch to the best usable sub other than the active one")
			},
			run: (*app).cmdSwitch,
		},
		{
			name: "heal", args: "SUB|--auto [--force] [--dry-run]", max: 1,
			summary: "copy a refreshed live file into its slot and restore the symlink",
			about: "After the CLI refreshed its token (the live symlink became a regular file),\n" +
				"copies the live file into SUB's slot and puts the symlink back.\n" +
				"With --auto, heals into the sub the journal says was active,\n" +
				"refusing (ambiguous) when the journal cannot tell.",
			exit: "0 healed, 1 refused or deferred, 2 error",
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.auto, "auto", false, "heal into the sub the journal says was active")
				fs.BoolVar(&o.force, "force", false, "override busy-signals and the identity check")
				fs.BoolVar(&o.dryRun, "dry-run", false, "run every check on a private copy and say what would happen; change nothing")
			},
			run: (*app).cmdHeal,
		},
		{
			name: "add", args: "SUB [--force]", min: 1, max: 1,
			summary: "adopt a fresh login from the live file as SUB's slot",
			about: "After a /login, the live path is a regular file holding a login that is in\n" +
				"no slot yet: writes it to SUB's slot (a new sub, or one whose slot holds\n" +
				"the same identity), records its identity and restores the symlink.\n" +
				"SUB need not be in --subs or have a slot file yet. Codex CLI and Gemini\n" +
				"CLI write a login through the live symlink, over its slot: remove the\n" +
				"link (rm LIVE; the slot keeps its login) before logging in.",
			exit: "0 added, 1 refused or deferred, 2 error",
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.force, "force", false, "override busy-signals and the identity checks (the login is another slot's, or SUB's slot holds another login)")
			},
			run: (*app).cmdAdd,
		},
		{
			name: "remove", args: "SUB [--reason TEXT]", min: 1, max: 1,
			summary: "take SUB out of the rotation; its slot is kept as a backup",
			about: "Takes SUB out of the rotation: its slot becomes its newest backup (see\n" +
				"credslots backups), then the slot and its identity record are removed, so\n" +
				"that discovery no longer finds SUB. Refuses the active sub: switch away\n" +
				"first. credslots restore BACKUP SUB brings the login back.",
			exit: "0 removed, 1 refused, 2 error",
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.StringVar(&o.reason, "reason", "taken out of the rotation (credslots remove)", "the `text` recorded in the journal")
			},
			run: (*app).cmdRemove,
		},
		{
			name: "capture", args: "SUB", min: 1, max: 1,
			summary: "record SUB's identity after a fresh login",
			about: "Records the identity fingerprint of SUB's slot as its baseline; identity\n" +
				"drift is measured against it.",
			exit: "0 captured, 1 refused or nothing to capture, 2 error",
			run:  (*app).cmdCapture,
		},
		{
			name: "rest", args: "SUB --until TIME|--for DURATION|--clear [--reason TEXT]", min: 1, max: 1,
			summary: "pass SUB over in switch --next until a time (a quota or rate limit)",
			about: "Records that SUB hit a quota or rate limit: switch --next passes it over\n" +
				"until TIME (RFC 3339, e.g. 2026-01-02T15:04:05Z) or for DURATION from now\n" +
				"(e.g. 90m, 5h, 1d). --clear ends the rest early. Journaled; status shows it.",
			exit: "0 recorded, 1 refused, 2 error",
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.StringVar(&o.until, "until", "", "rest until this `time`, RFC 3339")
				fs.Var(newDuration(&o.forDur, 0), "for", "rest for this `duration` from now (90m, 5h, 1d)")
				fs.StringVar(&o.reason, "reason", restDefaultReason, "the `text` recorded in the journal")
				fs.BoolVar(&o.clear, "clear", false, "end SUB's rest now")
			},
			run: (*app).cmdRest,
		},
		{
			name: "invalid", args: "SUB [--reason TEXT]", min: 1, max: 1,
			summary: "mark SUB's token as rejected by the server (a 401)",
			about: "Records that the server rejected SUB's token although it had not expired:\n" +
				"switch refuses SUB (invalidated) and switch --next passes it over until\n" +
				"its identity changes (a new login). Journaled; status shows it.",
			exit: "0 recorded, 1 refused, 2 error",
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.StringVar(&o.reason, "reason", "server rejected the token (credslots invalid)", "the `text` recorded in the journal")
			},
			run: (*app).cmdInvalid,
		},
		{
			name: "observe", args: "SUB", min: 1, max: 1,
			summary: "read an API response's head from stdin: rest, invalidate or rank SUB",
			about: "Reads what curl -sD - printed for a request made with SUB's login (status\n" +
				"line and headers; earlier heads such as 100 Continue and a body after are\n" +
				"skipped) and acts on it: a rejected rate limit or a 429 rests SUB\n" +
				"until the reset (Retry-After, else 1m), a 401 before the token's expiry\n" +
				"marks it invalid, and the usage headers (Anthropic's unified 5h/7d\n" +
				"utilization, Codex CLI's primary/secondary percent) are kept to rank\n" +
				"switch --next by headroom. Journaled when it rests or invalidates.",
			exit: "0 usage recorded or nothing to do, 1 SUB rested or invalidated (switch --next), 2 error",
			run:  (*app).cmdObserve,
		},
		{
			name: "backups", args: "[SUB]", max: 1,
			summary: "list the kept backups, newest first",
			about: "Lists every backup of the live file and of the slots (of SUB's slot only,\n" +
				"when given), newest first, with the login each holds. Changes nothing.",
			exit: "0, 1 when SUB is unknown, 2 error",
			run:  (*app).cmdBackups,
		},
		{
			name: "restore", args: "BACKUP SUB [--force]", min: 2, max: 2,
			summary: "write a backup into SUB's slot",
			about: "Writes the backup named BACKUP (a name from credslots backups) into SUB's\n" +
				"slot, keeping the slot's current content as a backup first. Refuses a\n" +
				"backup that belonged to another sub (a copy of its slot, or a login the\n" +
				"journal or its sidecar records for it). An invalid mark stays unless the\n" +
				"restored login is a new one. Into the active slot (Claude Code), the\n" +
				"restored login keeps the live file's MCP logins and other state, as a\n" +
				"switch does; the slot's whole content is kept as its backup. SUB need\n" +
				"not be in --subs or have a slot yet: a login kept from the live path\n" +
				"(.credentials.json.prev after a forced switch) that no slot holds goes\n" +
				"into a new sub's slot.",
			exit: "0 restored, 1 refused, 2 error",
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.force, "force", false, "restore a backup that belonged to another sub")
			},
			run: (*app).cmdRestore,
		},
		{
			name: "log", args: "[-n N]",
			summary: "the journal's newest records",
			about:   "Shows the journal's newest records, oldest first, names and reasons escaped.",
			exit:    "0, or 2 on error",
			flags: func(fs *flag.FlagSet, o *opts) {
				o.n = 20
				fs.Var(&intValue{&o.n}, "n", "show the newest `N` records")
			},
			run: (*app).cmdLog,
		},
		{
			name: "watch", args: "[--no-heal] [--retry DURATION] [--settle DURATION]",
			summary: "follow the creds dir: heal refreshes as they land, report identity drift",
			about: "Follows the creds dir (inotify, FSEvents or kqueue) until SIGINT or SIGTERM.\n" +
				"A Claude Code refresh is healed as soon as it lands (under the CLI's\n" +
				"locks), and identity drift is reported. One line (with --json, one\n" +
				"JSON object) per event on stdout: healed, heal_refused, identity_drift,\n" +
				"drift (with --no-heal) or error. A refused heal is not retried until the\n" +
				"live file changes, except a deferred one, retried after --retry.",
			exit: "0 when interrupted, 2 error",
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.noHeal, "no-heal", false, "report drift, never heal")
				fs.Var(newDuration(&o.retry, time.Minute), "retry", "retry a deferred or lock-timed-out heal after this `duration`")
				fs.Var(newDuration(&o.debounce, 50*time.Millisecond), "settle", "wait this `duration` after the last change before acting")
				fs.Var(newDuration(&o.loginSettle, 2*time.Second), "login-settle", "heal a refresh only once the live file and .claude.json have been unchanged this `duration` (a login writes both)")
			},
			run: (*app).cmdWatch,
		},
		{
			name: "run", args: "[--seat DIR] [--sub SUB] [--wait DURATION] [--seat-env NAME] -- CMD [ARGS...]",
			min: 1, max: maxArgs,
			summary: "run CMD with a sub's login leased to a seat of its own",
			about: "Leases the best usable free sub (or SUB) to a seat, a directory of CMD's own\n" +
				"(default: a new private seat under <dir>/.credslots/seats/, removed\n" +
				"afterwards), and runs CMD with the seat in its environment\n" +
				"(CLAUDE_SECURESTORAGE_CONFIG_DIR for claude, CODEX_HOME for codex,\n" +
				"GEMINI_CLI_HOME for gemini; --seat-env names another variable) plus\n" +
				"CREDSLOTS_SUB and CREDSLOTS_SEAT. CMD inherits the lease's lock (fd 3,\n" +
				"CREDSLOTS_LEASE_FD): the login is live in no other seat until CMD and\n" +
				"everything it started have exited. SIGINT, SIGTERM and SIGHUP are\n" +
				"forwarded; every refresh CMD makes is written back into the slot as it\n" +
				"lands, and the lease is released when CMD exits. A sub live at home,\n" +
				"leased elsewhere, resting, invalid or not fresh is passed over.",
			exit: "CMD's status; 75 when no sub is free within --wait; 2 on a usage or setup error",
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.StringVar(&o.seat, "seat", "", "the seat `dir` (default: a new private seat, removed afterwards)")
				fs.StringVar(&o.sub, "sub", "", "lease this `sub` only")
				fs.Var(newDuration(&o.wait, 0), "wait", "wait up to this `duration` for a sub to become free")
				fs.StringVar(&o.seatEnv, "seat-env", "", "the environment variable `name` that gives CMD the seat")
			},
			run: (*app).cmdRun,
		},
		{
			name: "leases", summary: "list the leases: which sub is live in which seat",
			about: "Lists each sub's lease: held (its login is live in the seat), released, or\n" +
				"ended (its holders died; the sub's next lease recovers the seat), with the\n" +
				"seat, the lessee's pid and host, and since when. Changes nothing.",
			exit: "0, or 2 on error",
			run:  (*app).cmdLeases,
		},
		{
			name: "help", args: "[COMMAND]", max: 1,
			summary: "this help, or a command's",
			about:   "Prints the help of credslots, or of COMMAND.",
			exit:    "0, 2 for an unknown command",
			run:     (*app).cmdHelp,
		},
	}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

const shortUsage = `usage: credslots [global flags] COMMAND [ARGS] [flags]
Run 'credslots help' for the commands and flags.
`

// synopsis is a command's usage line.
func synopsis(c *command) string {
	s := "usage: credslots [global flags] " + c.name
	if c.args != "" {
		s += " " + c.args
	}
	return s
}

// globalHelp is the text of credslots -h and credslots help.
func globalHelp() string {
	var b strings.Builder
	b.WriteString("usage: credslots [global flags] COMMAND [ARGS] [flags]\n\n")
	b.WriteString("Rotates and checks the credential slots of an AI coding-agent CLI (Claude\n")
	b.WriteString("Code, Gemini CLI, Codex CLI) with the safety checks of the credslots package.\n\n")
	b.WriteString("commands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.summary)
	}
	b.WriteString("\nglobal flags (before or after the command):\n")
	a := &app{}
	writeFlags(&b, a.newGlobalFlagSet())
	b.WriteString(footer)
	b.WriteString("\nRun 'credslots help COMMAND' or 'credslots COMMAND -h' for a command's flags.\n")
	return b.String()
}

const footer = `
exit codes: 0 done, 1 refused, deferred, unhealthy or nothing to do,
2 error or bad usage.
durations: read as 90m, 2h30m, 1d or 3d4h; written in days, hours and
minutes ("expired 20d ago", "in 7h12m"), seconds under a minute.
Times: RFC 3339, UTC.
--json: one JSON object on stdout, always with "ok"; an action's result
also has "action", "sub" and "from" (the sub that was active before);
every error is {"ok": false, "error": WORD, "reason": TEXT}. Messages go
to stderr. Tokens are never printed.
`

// commandHelp is the text of credslots COMMAND -h and credslots help COMMAND.
func commandHelp(c *command) string {
	var b strings.Builder
	b.WriteString(synopsis(c) + "\n\n")
	b.WriteString(c.about + "\n")
	if c.flags != nil {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.flags(fs, &opts{})
		b.WriteString("\nflags:\n")
		writeFlags(&b, fs)
	}
	fmt.Fprintf(&b, "\nexit: %s\n", c.exit)
	b.WriteString("\nGlobal flags (--tool, --dir, --subs, --grace, --lock-glob, --busy-proc,\n" +
		"--no-cli-locks, --json, -v) go before or after the command; see 'credslots help'.\n")
	return b.String()
}

// writeFlags lists fs's flags, sorted, with their value names and defaults.
func writeFlags(w io.Writer, fs *flag.FlagSet) {
	var lines [][2]string
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		left := dash + f.Name
		if name != "" {
			left += " " + strings.ToUpper(name)
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "0m" && f.DefValue != "[]" {
			def := f.DefValue
			if g, ok := f.Value.(flag.Getter); ok {
				if d, ok := g.Get().(time.Duration); ok {
					def = flagDuration(d)
				}
			}
			if strings.ContainsAny(def, " \t") {
				def = fmt.Sprintf("%q", def)
			}
			usage += " (default " + def + ")"
		}
		lines = append(lines, [2]string{left, usage})
	})
	sort.Slice(lines, func(i, j int) bool { return lines[i][0] < lines[j][0] })
	for _, l := range lines {
		if len(l[0]) <= 20 {
			fmt.Fprintf(w, "  %-20s  %s\n", l[0], l[1])
		} else {
			fmt.Fprintf(w, "  %s\n  %-20s  %s\n", l[0], "", l[1])
		}
	}
}

// version is set at link time (-ldflags "-X main.version=v1.2.3"); else
// the module version from the build information.
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func (a *app) printVersion() int {
	if a.json {
		a.printJSON(map[string]any{"ok": true, "name": "credslots", "version": versionString()})
		return exitOK
	}
	fmt.Fprintf(a.stdout, "credslots %s\n", versionString())
	return exitOK
}

func (a *app) cmdHelp(_ *opts, pos []string) int {
	text := globalHelp()
	if len(pos) == 1 {
		c := lookup(pos[0])
		if c == nil {
			return a.usageError(fmt.Errorf("help: %w", unknownCommand(pos[0])))
		}
		text = commandHelp(c)
	}
	if a.json {
		a.printJSON(map[string]any{"ok": true, "help": text})
		return exitOK
	}
	fmt.Fprint(a.stdout, text)
	return exitOK
}

// flagDuration writes a flag's default duration: whole minutes as the
// command writes durations, anything shorter in Go's syntax.
func flagDuration(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%dm", int64(d/time.Minute))
	}
	return d.String()
}
