package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gptme/credslots"
)

func (a *app) cmdStatus(_ *opts, _ []string) int {
	return a.snapshot(a.printStatus, func(credslots.Status) int { return exitOK })
}

func (a *app) cmdCheck(_ *opts, _ []string) int {
	return a.snapshot(a.printProblems, func(st credslots.Status) int {
		if st.Healthy {
			return exitOK
		}
		return exitRefused
	})
}

// snapshot takes the status, prints it as JSON or with show, and exits with
// what code says.
func (a *app) snapshot(show func(credslots.Status), code func(credslots.Status) int) int {
	m, err := a.manager("")
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
		fmt.Fprintf(a.stdout, "  - %s\n", printable(clean(p, nil)))
	}
}

// printStatus renders the snapshot as a table a person can scan.
func (a *app) printStatus(st credslots.Status) {
	now := a.now()
	fmt.Fprintf(a.stdout, "creds dir  %s (%s)\n", printable(st.CredsDir), st.Format)
	switch st.Live.Kind {
	case "symlink", "broken-symlink":
		fmt.Fprintf(a.stdout, "live       %s -> %s\n", st.Live.Kind, printable(st.Live.Target))
	default:
		fmt.Fprintf(a.stdout, "live       %s\n", st.Live.Kind)
	}
	fmt.Fprintln(a.stdout)
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SUB\tEXPIRES\tFRESH\tIDENTITY\tMODE\tNOTE")
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
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\t%s\t%s\n", marker, printable(s.Sub), expires, yesNo(s.Fresh),
			identityWord(s.Identity), dash(s.Mode), slotNote(s, now))
	}
	_ = tw.Flush()
	fmt.Fprintln(a.stdout)
	if len(st.Problems) == 0 {
		fmt.Fprintln(a.stdout, "healthy: no problems")
		return
	}
	fmt.Fprintln(a.stdout, "problems:")
	for _, p := range st.Problems {
		fmt.Fprintf(a.stdout, "  - %s\n", printable(clean(p, nil)))
	}
}

// slotNote says whether a sub was marked invalid or rests.
func slotNote(s credslots.SlotStatus, now time.Time) string {
	var notes []string
	if s.Invalid {
		notes = append(notes, "invalid")
	}
	if until := s.RestingUntil; until != nil && until.After(now) {
		notes = append(notes, "resting "+relative(*until, now)+" (until "+until.UTC().Format(time.RFC3339)+")")
	}
	if l := s.Lease; l != nil {
		notes = append(notes, fmt.Sprintf("leased to %s (pid %d, %s)", printable(dash(l.Seat)), l.PID, relative(l.Since, now)))
	}
	if len(notes) == 0 {
		return "-"
	}
	return strings.Join(notes, ", ")
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

// relative renders a time against now: "in 432m", "expired 90m ago".
func relative(at, now time.Time) string {
	d := at.Sub(now)
	if d >= 0 {
		return "in " + minutes(d)
	}
	return "expired " + minutes(-d) + " ago"
}

// minutes is the command's one way of writing a duration, the library's:
// whole minutes ("90m", "1800m"), or whole seconds under a minute ("20s").
// Both read back with time.ParseDuration.
func minutes(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%ds", int64(d/time.Second))
	}
	return fmt.Sprintf("%dm", int64(d/time.Minute))
}

func (a *app) cmdSwitch(o *opts, pos []string) int {
	if o.next == (len(pos) == 1) {
		return a.usageError(errors.New("switch: name a SUB or pass --next, not both"))
	}
	var sw []credslots.SwitchOption
	if o.force {
		sw = append(sw, credslots.Force())
	}
	m, err := a.manager("")
	if err != nil {
		return a.fail(err)
	}
	if o.next {
		res, err := m.SwitchNext(o.reason, sw...)
		if errors.Is(err, credslots.ErrNoCandidate) {
			return a.refuse(err, res.Reason, fields{"action": "switch", "sub": "", "candidates": m.Candidates()})
		}
		sub := ""
		if err == nil {
			sub, _ = m.ActiveSubscription()
		}
		return a.report("switch", sub, res, err)
	}
	res, err := m.SwitchTo(pos[0], o.reason, sw...)
	return a.report("switch", pos[0], res, err)
}

func (a *app) cmdHeal(o *opts, pos []string) int {
	if o.auto == (len(pos) == 1) {
		return a.usageError(errors.New("heal: name a SUB or pass --auto, not both"))
	}
	var sw []credslots.SwitchOption
	if o.force {
		sw = append(sw, credslots.Force())
	}
	if o.dryRun {
		return a.dryRunHeal(pos, sw)
	}
	m, err := a.manager("")
	if err != nil {
		return a.fail(err)
	}
	if len(pos) == 1 {
		res, err := m.HealDriftTo(pos[0], sw...)
		return a.report("heal", pos[0], res, err)
	}
	if last, ok := m.LastActive(); ok {
		fmt.Fprintf(a.stderr, "credslots: --auto: the journal says %s was active last\n", printable(last))
	}
	res, err := m.HealDrift(sw...)
	sub, _ := m.LastActive()
	return a.report("heal", sub, res, err)
}

func (a *app) cmdAdd(o *opts, pos []string) int {
	var sw []credslots.SwitchOption
	if o.force {
		sw = append(sw, credslots.Force())
	}
	m, err := a.manager(pos[0])
	if err != nil {
		return a.fail(err)
	}
	res, err := m.Adopt(pos[0], sw...)
	return a.report("add", pos[0], res, err)
}

// report prints a switch, heal or add outcome and returns its exit code.
func (a *app) report(action, sub string, res credslots.SwitchResult, err error) int {
	if err != nil {
		extra := fields{"action": action, "sub": sub}
		if len(res.DeferredLocks) > 0 {
			extra["deferred_locks"] = res.DeferredLocks
		}
		return a.refuse(err, res.Reason, extra)
	}
	if a.json {
		a.printJSON(map[string]any{"ok": true, "action": action, "sub": sub, "reason": res.Reason})
		return exitOK
	}
	fmt.Fprintln(a.stdout, printable(res.Reason))
	return exitOK
}

func (a *app) cmdCapture(_ *opts, pos []string) int {
	sub := pos[0]
	m, err := a.manager("")
	if err != nil {
		return a.fail(err)
	}
	fp, err := m.CaptureSlotFingerprint(sub)
	if err != nil {
		return a.refuse(err, "", fields{"action": "capture", "sub": sub})
	}
	if fp == "" {
		reason := fmt.Sprintf("nothing to capture: slot %s is missing or has no identity", printable(sub))
		if a.json {
			a.errorJSON("nothing_to_capture", reason, fields{"action": "capture", "sub": sub})
		}
		fmt.Fprintf(a.stderr, "credslots: %s\n", reason)
		return exitRefused
	}
	if a.json {
		a.printJSON(map[string]any{"ok": true, "action": "capture", "sub": sub, "fingerprint": fp})
	} else {
		fmt.Fprintf(a.stdout, "captured %s: fingerprint %s…\n", printable(sub), fp[:12])
	}
	return exitOK
}

func (a *app) cmdLog(o *opts, _ []string) int {
	if o.n < 0 {
		return a.usageError(errors.New("log: -n must not be negative"))
	}
	m, err := a.manager("")
	if err != nil {
		return a.fail(err)
	}
	entries, err := m.Journal()
	if err != nil {
		return a.fail(err)
	}
	if len(entries) > o.n {
		entries = entries[len(entries)-o.n:]
	}
	if a.json {
		if entries == nil {
			entries = []credslots.JournalEntry{}
		}
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
