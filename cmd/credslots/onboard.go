package main

// This file holds the way in: init from the one login a user has, what
// status and check say about a creds dir that is not set up yet, and the
// commands that keep the rotation (remove, rest --clear, a switch to the
// sub already active).

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gptme/credslots"
)

// notSetUp is the error of a creds dir that has no slot: with live set,
// the live file holds the one login, which init keeps as a slot.
type notSetUp struct {
	dir  string
	live credslots.LiveStatus
}

func (e *notSetUp) Error() string {
	if e.live.Kind == "file" {
		return setUpProblem
	}
	return fmt.Sprintf("no slots and no login in %s: log in with the CLI first, then run credslots init NAME", e.dir)
}

// setUpProblem is what status, check and every other command say about a
// creds dir whose only login is the live file.
const setUpProblem = "not set up yet: the live file holds your login and no slot exists; " +
	"run credslots init NAME to keep it as slot NAME"

// noSlots is the error of a creds dir with no slot file: what the live path
// holds says what to do.
func (a *app) noSlots(dir string) error {
	live := filepath.Join(dir, a.tool.DefaultLiveName())
	ls := credslots.LiveStatus{Path: live, Kind: "missing"}
	if fi, err := os.Lstat(live); err == nil {
		switch {
		case fi.Mode().IsRegular():
			ls.Kind = "file"
		case fi.Mode()&fs.ModeSymlink != 0:
			ls.Kind = "symlink"
			ls.Target, _ = os.Readlink(live)
			if _, err := os.Stat(live); err != nil {
				ls.Kind = "broken-symlink"
			}
		default:
			ls.Kind = "other"
		}
	}
	return &notSetUp{dir: dir, live: ls}
}

// statusJSON is the status snapshot as --json prints it: ok (for check,
// whether it is healthy) beside the library's fields.
type statusJSON struct {
	OK bool `json:"ok"`
	credslots.Status
	// Setup is the command that sets the creds dir up; "" when it is.
	Setup string `json:"setup,omitempty"`
}

// notSetUpSnapshot is status and check on a creds dir with no slot.
func (a *app) notSetUpSnapshot(ns *notSetUp, show func(credslots.Status), code func(credslots.Status) int) int {
	if ns.live.Kind != "file" {
		return a.fail(ns)
	}
	st := credslots.Status{
		CredsDir:  ns.dir,
		Format:    a.tool.Name(),
		CheckedAt: a.now().UTC(),
		Live:      ns.live,
		Slots:     []credslots.SlotStatus{},
		Problems:  []string{setUpProblem},
	}
	if a.json {
		a.printJSON(statusJSON{OK: a.cmd.name != "check", Status: st, Setup: "credslots init NAME"})
	} else {
		show(st)
	}
	return code(st)
}

// setUpHint replaces the heal advice of a live file that matches no slot
// when no configured sub has a slot: the login is new, and init or add
// keeps it.
func setUpHint(st *credslots.Status) {
	if st.Live.Kind != "file" {
		return
	}
	for _, s := range st.Slots {
		if s.Exists {
			return
		}
	}
	out := []string{setUpProblem}
	for _, p := range st.Problems {
		if !strings.HasPrefix(p, "live file matches no slot") {
			out = append(out, p)
		}
	}
	st.Problems = out
}

func (a *app) cmdInit(_ *opts, pos []string) int {
	name := pos[0]
	extra := fields{"action": "init", "sub": name, "from": ""}
	dir, err := a.resolveDir()
	if err != nil {
		return a.fail(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return a.fail(fmt.Errorf("creds dir %s: no such directory; log in with the CLI first, or pass --dir", dir))
	}
	existing, err := credslots.DiscoverSubscriptions(dir, a.tool.DefaultSlotTemplate())
	if err != nil {
		return a.fail(err)
	}
	for _, s := range a.subs {
		if _, err := os.Lstat(filepath.Join(dir, strings.ReplaceAll(a.tool.DefaultSlotTemplate(), "{sub}", s))); err == nil && !contains(existing, s) {
			existing = append(existing, s)
		}
	}
	if len(existing) > 0 {
		reason := fmt.Sprintf("%s is set up already (slots: %s); keep a further login with credslots add NAME",
			dir, strings.Join(existing, ", "))
		return a.refuseWord("already_set_up", reason, extra)
	}
	var ns *notSetUp
	if !errors.As(a.noSlots(dir), &ns) || ns.live.Kind != "file" {
		reason := fmt.Sprintf("no login to keep: %s is not a regular file (%s); log in with the CLI first",
			filepath.Base(ns.live.Path), ns.live.Kind)
		return a.refuseWord("no_login", reason, extra)
	}
	m, err := credslots.New(a.options(dir, []string{name})...)
	if err != nil {
		return a.fail(err)
	}
	res, err := m.AdoptContext(a.ctx, name)
	if errors.Is(err, credslots.ErrNotFresh) {
		res.Reason = res.Reason + "; use the CLI once so that it refreshes its token, then run credslots init " + name
	}
	if err != nil {
		return a.refuse(err, res.Reason, extra)
	}
	reason := fmt.Sprintf("set up: your login is slot %s (%s), and %s points at it; %s to rotate",
		name, filepath.Base(m.SlotPath(name)), filepath.Base(m.LivePath()), a.addAdvice(m, "log in to another account and run credslots add NAME"))
	if a.json {
		a.printJSON(map[string]any{"ok": true, "action": "init", "sub": name, "from": "", "changed": true, "reason": reason})
		return exitOK
	}
	fmt.Fprintln(a.stdout, printable(reason))
	return exitOK
}

// refuseWord reports a refusal of the command's own (exit 1) with its word.
func (a *app) refuseWord(word, reason string, extra fields) int {
	if a.json {
		a.errorJSON(word, reason, extra)
	}
	what := "refused"
	if a.cmd != nil {
		what = a.cmd.name + " refused"
	}
	fmt.Fprintf(a.stderr, "credslots: %s (%s): %s\n", what, word, printable(reason))
	return exitRefused
}

// alreadyActive answers a switch to the sub already active, fresh, and
// recorded as active by the journal: nothing to do, nothing changed,
// nothing journaled. done is false when the switch must run: another sub
// is active, sub's slot is not fresh (the switch then refuses), or the
// journal does not say sub is active (the switch records it).
func (a *app) alreadyActive(m *credslots.Manager, sub string) (int, bool) {
	active, ok := m.ActiveSubscription()
	if !ok || active != sub {
		return 0, false
	}
	if fresh, _ := m.SlotIsFresh(sub); !fresh {
		return 0, false
	}
	// A link the journal does not know of (made by hand) is recorded by
	// the switch, so that heal --auto knows whose token is live.
	if last, ok := m.LastActive(); !ok || last != sub {
		return 0, false
	}
	reason := fmt.Sprintf("%s is already active; nothing changed", sub)
	if a.json {
		a.printJSON(map[string]any{"ok": true, "action": "switch", "sub": sub, "from": sub, "changed": false, "reason": reason})
		return exitOK, true
	}
	fmt.Fprintln(a.stdout, printable(reason))
	return exitOK, true
}

func (a *app) cmdRemove(o *opts, pos []string) int {
	sub := pos[0]
	m, err := a.manager("")
	if err != nil {
		return a.fail(err)
	}
	from, _ := m.ActiveSubscription()
	extra := fields{"action": "remove", "sub": sub, "from": from}
	if err := m.Remove(sub, o.reason); err != nil {
		reason := ""
		if errors.Is(err, credslots.ErrActiveSub) && from == sub { // else its refreshed login is live: the refusal says to heal
			reason = fmt.Sprintf("%s is the active sub; switch to another one first (credslots switch --next)", sub)
		}
		return a.refuse(err, reason, extra)
	}
	backup := filepath.Base(m.SlotPath(sub)) + ".prev"
	reason := fmt.Sprintf("removed %s from the rotation; its login is kept as the backup %s (credslots restore %s %s brings it back)",
		sub, backup, backup, sub)
	if a.json {
		a.printJSON(map[string]any{"ok": true, "action": "remove", "sub": sub, "from": from, "changed": true, "backup": backup, "reason": reason})
		return exitOK
	}
	fmt.Fprintln(a.stdout, printable(reason))
	return exitOK
}

// clearRest ends sub's rest now.
func (a *app) clearRest(o *opts, sub string, now time.Time) int {
	m, err := a.manager("")
	if err != nil {
		return a.fail(err)
	}
	from, _ := m.ActiveSubscription()
	extra := fields{"action": "rest", "sub": sub, "from": from}
	reason := o.reason
	if reason == restDefaultReason {
		reason = "rest cleared (credslots rest --clear)"
	}
	for _, c := range m.Candidates() {
		if c.Sub == sub && c.RestingUntil == nil {
			msg := fmt.Sprintf("%s is not resting; nothing changed", sub)
			if a.json {
				a.printJSON(map[string]any{"ok": true, "action": "rest", "sub": sub, "from": from, "changed": false, "until": nil, "reason": msg})
				return exitOK
			}
			fmt.Fprintln(a.stdout, printable(msg))
			return exitOK
		}
	}
	if err := m.Rest(sub, now, reason); err != nil {
		return a.refuse(err, "", extra)
	}
	msg := fmt.Sprintf("%s rests no more; switch --next may pick it again", sub)
	if a.json {
		a.printJSON(map[string]any{"ok": true, "action": "rest", "sub": sub, "from": from, "changed": true, "until": nil, "reason": msg})
		return exitOK
	}
	fmt.Fprintln(a.stdout, printable(msg))
	return exitOK
}

// removedSubs lists the subs whose slot is gone but whose newest backup
// ("<slot>.prev") is still there: subs taken out of the rotation.
func (a *app) removedSubs() []string {
	dir, err := a.resolveDir()
	if err != nil {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	prefix := a.tool.DefaultLiveName() + "."
	var out []string
	for _, de := range ents {
		name := de.Name()
		if !de.Type().IsRegular() || !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ".prev") {
			continue
		}
		sub := strings.TrimSuffix(strings.TrimPrefix(name, prefix), ".prev")
		if sub == "" || strings.ContainsAny(sub, "/\\") || strings.Contains(sub, ".credslots") {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, prefix+sub)); err == nil {
			continue // not removed: discovery finds it
		}
		out = append(out, sub)
	}
	return out
}

// withFrom fills in, for a refused action, the sub that is active: the
// library's result leaves From empty when it changed nothing, and every
// action result in --json names it.
func withFrom(m *credslots.Manager, res *credslots.SwitchResult, err error) {
	if err != nil && res.From == "" {
		res.From, _ = m.ActiveSubscription()
	}
}

// printHelp prints text for -h and --help: one JSON object under --json,
// as the help command does.
func (a *app) printHelp(text string) int {
	if a.json {
		a.printJSON(map[string]any{"ok": true, "help": text})
		return exitOK
	}
	fmt.Fprint(a.stdout, text)
	return exitOK
}

// addAdvice is how to keep a further login: then, where a login replaces
// the live symlink with a regular file (Claude Code), which add files.
// Where the CLI's login writes through the link, over the slot it points
// at (Codex CLI, Gemini CLI), the link must go first.
func (a *app) addAdvice(m *credslots.Manager, then string) string {
	if !a.tool.LoginWritesThrough() {
		return then
	}
	return fmt.Sprintf("remove the live link first (rm %s: only the link goes, the slot keeps its login; a login through the link would overwrite that slot), then %s",
		m.LivePath(), then)
}
