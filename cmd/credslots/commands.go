package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
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
// what code says. What it prints on stdout is written in one go at its end
// (see buffered).
func (a *app) snapshot(show func(credslots.Status), code func(credslots.Status) int) int {
	return a.buffered(func() int { return a.snapshotNow(show, code) })
}

// stdoutBuffer is the size of buffered's buffer: a status of a thousand
// slots fits it, so it is written with one system call.
const stdoutBuffer = 64 << 10

// buffered runs f with stdout buffered and writes what f printed there when
// f returns, whatever its exit code: the table prints cell by cell, and
// each cell would otherwise be a system call of its own. A failed write of
// stdout is reported on stderr, and the command then exits 2.
func (a *app) buffered(f func() int) int {
	out := a.stdout
	w := bufio.NewWriterSize(out, stdoutBuffer)
	a.stdout = w
	code := f()
	a.stdout = out
	if err := w.Flush(); err != nil {
		fmt.Fprintf(a.stderr, "credslots: write standard output: %v\n", err)
		return exitError
	}
	return code
}

func (a *app) snapshotNow(show func(credslots.Status), code func(credslots.Status) int) int {
	m, err := a.manager("")
	var ns *notSetUp
	if errors.As(err, &ns) {
		return a.notSetUpSnapshot(ns, show, code)
	}
	if err != nil {
		return a.fail(err)
	}
	st, err := m.Status()
	if err != nil {
		return a.fail(err)
	}
	setUpHint(&st)
	speakStatus(&st)
	if a.json {
		a.printJSON(statusJSON{OK: a.cmd == nil || a.cmd.name != "check" || st.Healthy, Status: st})
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
	if len(st.Slots) > 0 {
		a.printSlots(st, now)
		fmt.Fprintln(a.stdout)
	}
	if len(st.Problems) == 0 {
		fmt.Fprintln(a.stdout, "healthy: no problems")
		return
	}
	fmt.Fprintln(a.stdout, "problems:")
	for _, p := range st.Problems {
		fmt.Fprintf(a.stdout, "  - %s\n", printable(clean(p, nil)))
	}
}

// printSlots is the status table of the slots.
func (a *app) printSlots(st credslots.Status, now time.Time) {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	emails := false
	for _, s := range st.Slots {
		emails = emails || s.Email != ""
	}
	if emails {
		fmt.Fprintln(tw, "  SUB\tEMAIL\tEXPIRES\tFRESH\tIDENTITY\tMODE\tNOTE")
	} else {
		fmt.Fprintln(tw, "  SUB\tEXPIRES\tFRESH\tIDENTITY\tMODE\tNOTE")
	}
	// One row is built in one buffer and written once: the table of many
	// slots costs no allocation per cell.
	var row []byte
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
		row = append(append(append(row[:0], marker...), ' '), printable(s.Sub)...)
		if emails {
			row = append(append(row, '\t'), dash(printable(s.Email))...)
		}
		for _, cell := range [...]string{expires, yesNo(s.Fresh), identityWord(s.Identity), dash(s.Mode), slotNote(s, now)} {
			row = append(append(row, '\t'), cell...)
		}
		_, _ = tw.Write(append(row, '\n'))
	}
	_ = tw.Flush()
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
	if s.Headroom != nil {
		notes = append(notes, fmt.Sprintf("headroom %.0f%%", *s.Headroom*100))
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

// relative renders a time against now: "in 7h12m", "expired 20d ago".
func relative(at, now time.Time) string {
	// Far times overflow time.Duration: count days through Unix seconds.
	if secs := at.Unix() - now.Unix(); secs > 100*365*86400 || secs < -100*365*86400 {
		days := secs / 86400
		if days >= 0 {
			return fmt.Sprintf("in %dd", days)
		}
		return fmt.Sprintf("expired %dd ago", -days)
	}
	d := at.Sub(now)
	if d >= 0 {
		return "in " + human(d)
	}
	return "expired " + human(-d) + " ago"
}

// ago says how long before now at was, for a time in the past (a lease's
// start): "5m ago"; a time not before now (another host's clock) is "now".
func ago(at, now time.Time) string {
	if !at.Before(now) {
		return "now"
	}
	if secs := now.Unix() - at.Unix(); secs > 100*365*86400 {
		return fmt.Sprintf("%dd ago", secs/86400)
	}
	return human(now.Sub(at)) + " ago"
}

func (a *app) cmdSwitch(o *opts, pos []string) int {
	if o.next == (len(pos) == 1) {
		if !o.next {
			return a.usageError(errors.New("switch: name a SUB or pass --next"))
		}
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
		res, err := m.SwitchNextContext(a.ctx, o.reason, sw...)
		if errors.Is(err, credslots.ErrNoCandidate) {
			return a.refuse(err, res.Reason, fields{"action": "switch", "sub": "", "from": res.From, "candidates": speakCandidates(m.Candidates())})
		}
		return a.report("switch", res.Sub, res, err)
	}
	if code, done := a.alreadyActive(m, pos[0]); done {
		return code
	}
	res, err := m.SwitchToContext(a.ctx, pos[0], o.reason, sw...)
	withFrom(m, &res, err)
	if err == nil && res.From == pos[0] {
		// Linked by hand, unknown to the journal: now recorded.
		res.Reason = fmt.Sprintf("%s was already active; the journal now records it, so that heal --auto knows whose token is live", pos[0])
	}
	return a.report("switch", pos[0], res, err)
}

func (a *app) cmdHeal(o *opts, pos []string) int {
	if o.auto == (len(pos) == 1) {
		if !o.auto {
			return a.usageError(errors.New("heal: name a SUB or pass --auto"))
		}
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
		res, err := m.HealDriftToContext(a.ctx, pos[0], sw...)
		withFrom(m, &res, err)
		return a.report("heal", pos[0], res, err)
	}
	// A flip of the link by hand that this run sees is journaled, as watch
	// does, so that the refresh healed next goes into the sub it points at.
	if flipped, ok, err := m.RecordFlip(); err != nil {
		fmt.Fprintf(a.stderr, "credslots: --auto: could not record the live symlink's flip: %s\n", printable(message(err)))
	} else if ok {
		fmt.Fprintf(a.stderr, "credslots: --auto: the live symlink was pointed at %s outside credslots; recorded\n", printable(flipped))
	}
	if last, ok := m.LastActive(); ok {
		fmt.Fprintf(a.stderr, "credslots: --auto: the journal says %s was active last\n", printable(last))
	}
	res, err := m.HealDriftContext(a.ctx, sw...)
	withFrom(m, &res, err)
	sub := res.Sub
	if sub == "" {
		sub, _ = m.LastActive()
	}
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
	res, err := m.AdoptContext(a.ctx, pos[0], sw...)
	withFrom(m, &res, err)
	if _, lerr := os.Lstat(m.LivePath()); errors.Is(err, credslots.ErrNoDrift) && errors.Is(lerr, fs.ErrNotExist) {
		// Nothing to remove first: the CLI's login lands at the live path.
		res.Reason = fmt.Sprintf("no new login to add: nothing is at the live path %s; log in with the CLI (its login lands there), then run credslots add %s",
			m.LivePath(), pos[0])
	} else if errors.Is(err, credslots.ErrNoDrift) {
		res.Reason = "no new login to add: the live file is already a slot's; " +
			a.addAdvice(m, "log in to the other account with the CLI, then run credslots add "+pos[0])
		if active, ok := m.ActiveSubscription(); ok && a.tool.LoginWritesThrough() {
			if d, derr := m.DetectSlotIdentityDrift(active); derr == nil && d.Drift && d.CurrentFingerprint != "" {
				// The slot the link points at holds another login than
				// the one captured for it: a login wrote through the link.
				res.Reason = fmt.Sprintf("no new login to add: slot %s holds another login than the one captured for it: a login wrote through the live link, over %s's own; "+
					"to keep it as %s, move it out of the slot (rm %s; mv %s %s), then run credslots add %s (log in to %s again later, the link removed first, and run credslots add %s --force: what was captured for it is the login overwritten)",
					active, active, pos[0], m.LivePath(), m.SlotPath(active), m.LivePath(), pos[0], active, active)
			}
		}
	}
	return a.report("add", pos[0], res, err)
}

// report prints a switch, heal or add outcome and returns its exit code.
func (a *app) report(action, sub string, res credslots.SwitchResult, err error) int {
	if err != nil {
		extra := fields{"action": action, "sub": sub, "from": res.From}
		if len(res.DeferredLocks) > 0 {
			extra["deferred_locks"] = res.DeferredLocks
		}
		return a.refuse(err, res.Reason, extra)
	}
	reason := speak(res.Reason, sub)
	if a.json {
		changed := !strings.HasPrefix(res.Reason, dryRunPrefix)
		a.printJSON(map[string]any{"ok": true, "action": action, "sub": sub, "from": res.From, "changed": changed, "reason": reason})
		return exitOK
	}
	fmt.Fprintln(a.stdout, printable(reason))
	return exitOK
}

func (a *app) cmdCapture(_ *opts, pos []string) int {
	sub := pos[0]
	m, err := a.manager("")
	if err != nil {
		return a.fail(err)
	}
	from, _ := m.ActiveSubscription()
	fp, err := m.CaptureSlotFingerprint(sub)
	if err != nil {
		return a.refuse(err, "", fields{"action": "capture", "sub": sub, "from": from})
	}
	if fp == "" {
		reason := fmt.Sprintf("nothing to capture: slot %s is missing or has no identity", printable(sub))
		if a.json {
			a.errorJSON("nothing_to_capture", reason, fields{"action": "capture", "sub": sub, "from": from})
		}
		fmt.Fprintf(a.stderr, "credslots: %s\n", reason)
		return exitRefused
	}
	reason := fmt.Sprintf("captured %s: fingerprint %s…; identity drift is measured against it", sub, fp[:12])
	if a.json {
		a.printJSON(map[string]any{"ok": true, "action": "capture", "sub": sub, "from": from, "changed": true, "fingerprint": fp, "reason": reason})
	} else {
		fmt.Fprintln(a.stdout, printable(reason))
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
		a.printJSON(map[string]any{"ok": true, "entries": entries})
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
		sub := printable(e.Sub)
		if sub == "" {
			sub = "-" // a keep record of a login no slot holds
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), printable(e.Op), printable(e.Phase), sub, what)
	}
	_ = tw.Flush()
}

// printable escapes control characters and invalid UTF-8 the way Go quotes
// strings, without the quotes.
func printable(s string) string {
	if plainASCII(s) {
		return s // what quoting would give back
	}
	q := strconv.QuoteToGraphic(s)
	return strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`)
}

// plainASCII reports whether s is printable ASCII without a backslash, which
// printable returns as it is.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '\\' {
			return false
		}
	}
	return true
}
