package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gptme/credslots"
)

func (a *app) cmdStatus(args []string) int {
	return a.snapshot("status", args, a.printStatus, func(credslots.Status) int { return exitOK })
}

func (a *app) cmdCheck(args []string) int {
	return a.snapshot("check", args, a.printProblems, func(st credslots.Status) int {
		if st.Healthy {
			return exitOK
		}
		return exitRefused
	})
}

// snapshot takes the status, prints it as JSON or with show, and exits with
// what code says.
func (a *app) snapshot(name string, args []string, show func(credslots.Status), code func(credslots.Status) int) int {
	if _, err := parseCommand(flag.NewFlagSet(name, flag.ContinueOnError), args, 0, 0); err != nil {
		return a.usageError(err)
	}
	m, err := a.manager()
	if err != nil {
		return a.fail(err)
	}
	st, err := m.Status()
	if err != nil {
		return a.fail(err)
	}
	if a.json {
		a.printJSON(st)
	} else {
		show(st)
	}
	return code(st)
}

// printProblems is check's output: one line when healthy, else the problems.
func (a *app) printProblems(st credslots.Status) {
	if st.Healthy {
		fmt.Fprintf(a.stdout, "ok: %s is healthy\n", st.CredsDir)
		return
	}
	fmt.Fprintf(a.stdout, "%d problem(s) in %s:\n", len(st.Problems), st.CredsDir)
	for _, p := range st.Problems {
		fmt.Fprintf(a.stdout, "  - %s\n", p)
	}
}

// printStatus renders the snapshot as a table a person can scan.
func (a *app) printStatus(st credslots.Status) {
	now := a.now()
	fmt.Fprintf(a.stdout, "creds dir  %s (%s)\n", st.CredsDir, st.Format)
	switch st.Live.Kind {
	case "symlink", "broken-symlink":
		fmt.Fprintf(a.stdout, "live       %s -> %s\n", st.Live.Kind, st.Live.Target)
	default:
		fmt.Fprintf(a.stdout, "live       %s\n", st.Live.Kind)
	}
	fmt.Fprintln(a.stdout)
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SUB\tEXPIRES\tFRESH\tIDENTITY\tMODE")
	for _, s := range st.Slots {
		marker := " "
		if s.Active {
			marker = "*"
		}
		expires := "unknown"
		switch {
		case !s.Exists:
			expires = "missing"
		case s.Expiry != nil:
			expires = relative(*s.Expiry, now)
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\t%s\n", marker, s.Sub, expires, yesNo(s.Fresh), identityWord(s.Identity), dash(s.Mode))
	}
	_ = tw.Flush()
	fmt.Fprintln(a.stdout)
	if len(st.Problems) == 0 {
		fmt.Fprintln(a.stdout, "healthy: no problems")
		return
	}
	fmt.Fprintln(a.stdout, "problems:")
	for _, p := range st.Problems {
		fmt.Fprintf(a.stdout, "  - %s\n", p)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// identityWord summarizes an identity check in one word.
func identityWord(id credslots.IdentityDriftInfo) string {
	switch {
	case id.Drift:
		return "DRIFT"
	case id.StoredFingerprint == "" && id.CurrentFingerprint == "":
		return "-"
	case id.StoredFingerprint == "":
		return "not captured"
	default:
		return "ok"
	}
}

// relative renders an expiry against now: "in 7h12m", "expired 3h ago".
func relative(at, now time.Time) string {
	d := at.Sub(now)
	if d >= 0 {
		return "in " + shortDuration(d)
	}
	return "expired " + shortDuration(-d) + " ago"
}

// shortDuration renders d in at most two units: "2d3h", "7h12m", "3h", "45m", "20s".
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	default:
		days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%dh", days, h)
	}
}

func (a *app) cmdSwitch(args []string) int {
	fs := flag.NewFlagSet("switch", flag.ContinueOnError)
	reason := fs.String("reason", "manual switch via credslots", "why, for the logs")
	force := fs.Bool("force", false, "override busy-signals, identity drift and live drift (never freshness)")
	pos, err := parseCommand(fs, args, 1, 1)
	if err != nil {
		return a.usageError(err)
	}
	var opts []credslots.SwitchOption
	if *force {
		opts = append(opts, credslots.Force())
	}
	return a.change("switch", pos[0], func(m *credslots.Manager) (credslots.SwitchResult, error) {
		return m.SwitchTo(pos[0], *reason, opts...)
	})
}

func (a *app) cmdHeal(args []string) int {
	fs := flag.NewFlagSet("heal", flag.ContinueOnError)
	auto := fs.Bool("auto", false, "heal into the sub the journal says was active")
	force := fs.Bool("force", false, "override busy-signals and the identity check")
	dryRun := fs.Bool("dry-run", false, "run every check on a private copy; change nothing")
	pos, err := parseCommand(fs, args, 0, 1)
	if err != nil {
		return a.usageError(err)
	}
	if *auto == (len(pos) == 1) {
		return a.usageError(errors.New("heal: name a SUB or pass --auto, not both"))
	}
	var opts []credslots.SwitchOption
	if *force {
		opts = append(opts, credslots.Force())
	}
	if *dryRun {
		return a.dryRunHeal(pos, opts)
	}
	m, err := a.manager()
	if err != nil {
		return a.fail(err)
	}
	if len(pos) == 1 {
		res, err := m.HealDriftTo(pos[0], opts...)
		return a.report("heal", pos[0], res, err)
	}
	if last, ok := m.LastActive(); ok {
		fmt.Fprintf(a.stderr, "credslots: --auto: the journal says %s was active last\n", printable(last))
	}
	res, err := m.HealDrift(opts...)
	sub, _ := m.LastActive()
	return a.report("heal", sub, res, err)
}

// change runs a switch and reports it; the library journals it.
func (a *app) change(action, sub string, do func(*credslots.Manager) (credslots.SwitchResult, error)) int {
	m, err := a.manager()
	if err != nil {
		return a.fail(err)
	}
	res, err := do(m)
	return a.report(action, sub, res, err)
}

// report prints a switch or heal outcome and returns its exit code.
func (a *app) report(action, sub string, res credslots.SwitchResult, err error) int {
	code := exitOK
	word := ""
	switch {
	case err == nil:
	case refusal(err):
		code, word = exitRefused, errorWord(err)
	default:
		code, word = exitError, errorWord(err)
	}
	if a.json {
		out := map[string]any{"ok": res.OK, "action": action, "sub": sub, "reason": res.Reason}
		if len(res.DeferredLocks) > 0 {
			out["deferred_locks"] = res.DeferredLocks
		}
		if word != "" {
			out["error"] = word
		}
		a.printJSON(out)
	}
	switch code {
	case exitOK:
		if !a.json {
			fmt.Fprintln(a.stdout, res.Reason)
		}
	case exitRefused:
		fmt.Fprintf(a.stderr, "credslots: %s refused (%s): %s\n", action, word, res.Reason)
	default:
		fmt.Fprintf(a.stderr, "credslots: %s failed: %v\n", action, err)
	}
	return code
}

func (a *app) cmdCapture(args []string) int {
	pos, err := parseCommand(flag.NewFlagSet("capture", flag.ContinueOnError), args, 1, 1)
	if err != nil {
		return a.usageError(err)
	}
	m, err := a.manager()
	if err != nil {
		return a.fail(err)
	}
	fp, err := m.CaptureSlotFingerprint(pos[0])
	if err != nil {
		if refusal(err) {
			if a.json {
				a.printJSON(map[string]any{"ok": false, "sub": pos[0], "error": errorWord(err), "message": err.Error()})
			}
			fmt.Fprintf(a.stderr, "credslots: %v\n", err)
			return exitRefused
		}
		return a.fail(err)
	}
	if fp == "" {
		if a.json {
			a.printJSON(map[string]any{"ok": false, "sub": pos[0], "error": "nothing_to_capture",
				"message": "slot missing or without an identity"})
		}
		fmt.Fprintf(a.stderr, "credslots: nothing to capture: slot %s is missing or has no identity\n", pos[0])
		return exitRefused
	}
	if a.json {
		a.printJSON(map[string]any{"ok": true, "sub": pos[0], "fingerprint": fp})
	} else {
		fmt.Fprintf(a.stdout, "captured %s: fingerprint %s…\n", pos[0], fp[:12])
	}
	return exitOK
}

func (a *app) cmdLog(args []string) int {
	fs := flag.NewFlagSet("log", flag.ContinueOnError)
	n := fs.Int("n", 20, "how many records, newest last")
	if _, err := parseCommand(fs, args, 0, 0); err != nil {
		return a.usageError(err)
	}
	if *n < 0 {
		return a.usageError(errors.New("log: -n must not be negative"))
	}
	m, err := a.manager()
	if err != nil {
		return a.fail(err)
	}
	entries, err := m.Journal()
	if err != nil {
		return a.fail(err)
	}
	if len(entries) > *n {
		entries = entries[len(entries)-*n:]
	}
	if a.json {
		a.printJSON(map[string]any{"entries": entries})
		return exitOK
	}
	printLog(a.stdout, entries)
	return exitOK
}

// printLog prints journal records, one a line, with every name and reason
// escaped so that nothing in them can drive the terminal.
func printLog(w io.Writer, entries []credslots.JournalEntry) {
	if len(entries) == 0 {
		fmt.Fprintln(w, "no changes recorded")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range entries {
		what := printable(e.Reason)
		if e.Error != "" {
			what = printable(e.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), printable(e.Op), printable(e.Phase), printable(e.Sub), what)
	}
	_ = tw.Flush()
}

// printable escapes control characters and invalid UTF-8 the way Go quotes
// strings, without the quotes.
func printable(s string) string {
	q := strconv.QuoteToGraphic(s)
	return strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`)
}
