package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gptme/credslots"
)

// unknownSub is the refusal for a sub that is not configured, worded as
// the library words it.
func unknownSub(m *credslots.Manager, sub string) error {
	known := ""
	for i, s := range m.Subscriptions() {
		if i > 0 {
			known += ", "
		}
		known += s
	}
	return fmt.Errorf("unknown subscription: %q (known: %s): %w", sub, known, credslots.ErrUnknownSubscription)
}

// restDefaultReason is rest's default --reason.
const restDefaultReason = "quota or rate limit (credslots rest)"

func (a *app) cmdRest(o *opts, pos []string) int {
	sub := pos[0]
	now := a.now()
	var until time.Time
	switch {
	case o.clear && (o.until != "" || o.forDur != 0):
		return a.usageError(errors.New("rest: pass --clear alone, without --until or --for"))
	case o.clear:
		return a.clearRest(o, sub, now)
	case o.until != "" && o.forDur != 0:
		return a.usageError(errors.New("rest: pass --until or --for, not both"))
	case o.until != "":
		t, err := time.Parse(time.RFC3339, o.until)
		if err != nil {
			return a.usageError(fmt.Errorf("rest: --until %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", o.until))
		}
		until = t.UTC()
	case o.forDur != 0:
		if o.forDur < 0 {
			return a.usageError(errors.New("rest: --for must be positive"))
		}
		until = now.Add(o.forDur).UTC()
	default:
		return a.usageError(errors.New("rest: pass --until TIME or --for DURATION, or --clear to end a rest"))
	}
	if !until.After(now) {
		return a.usageError(fmt.Errorf("rest: %s is not in the future", until.Format(time.RFC3339)))
	}
	m, err := a.manager("")
	if err != nil {
		return a.fail(err)
	}
	from, _ := m.ActiveSubscription()
	extra := fields{"action": "rest", "sub": sub, "from": from}
	if err := m.Rest(sub, until, o.reason); err != nil {
		return a.refuse(err, "", extra)
	}
	reason := fmt.Sprintf("%s rests until %s (%s); switch --next passes it over until then (credslots rest %s --clear ends it)",
		sub, until.Format(time.RFC3339), human(until.Sub(now)), sub)
	if a.json {
		a.printJSON(map[string]any{"ok": true, "action": "rest", "sub": sub, "from": from, "changed": true, "until": until, "reason": reason})
		return exitOK
	}
	fmt.Fprintln(a.stdout, printable(reason))
	return exitOK
}

func (a *app) cmdInvalid(o *opts, pos []string) int {
	sub := pos[0]
	m, err := a.manager("")
	if err != nil {
		return a.fail(err)
	}
	from, _ := m.ActiveSubscription()
	if err := m.MarkInvalid(sub, o.reason); err != nil {
		return a.refuse(err, "", fields{"action": "invalid", "sub": sub, "from": from})
	}
	reason := fmt.Sprintf("%s marked invalid; switch refuses it until a new login changes its identity", sub)
	if a.json {
		a.printJSON(map[string]any{"ok": true, "action": "invalid", "sub": sub, "from": from, "changed": true, "reason": reason})
		return exitOK
	}
	fmt.Fprintln(a.stdout, printable(reason))
	return exitOK
}

func (a *app) cmdBackups(_ *opts, pos []string) int {
	// The backups of a sub taken out of the rotation (remove) are listed
	// too, unless --subs says which subs to show.
	var removed []string
	if len(a.subs) == 0 {
		removed = a.removedSubs()
	}
	m, err := a.managerWith(removed)
	if err != nil {
		return a.fail(err)
	}
	if len(pos) == 1 && !contains(m.Subscriptions(), pos[0]) {
		return a.refuse(unknownSub(m, pos[0]), "", fields{"action": "backups", "sub": pos[0]})
	}
	all, err := m.Backups()
	if err != nil {
		return a.fail(err)
	}
	list := []credslots.Backup{}
	for _, b := range all {
		if len(pos) == 0 || b.Sub == pos[0] {
			list = append(list, b)
		}
	}
	if a.json {
		a.printJSON(map[string]any{"ok": true, "backups": list})
		return exitOK
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stdout, "no backups")
		return exitOK
	}
	now := a.now()
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKUP\tOF\tSUB\tTAKEN\tEXPIRES\tIDENTITY")
	for _, b := range list {
		expires := "unknown"
		if b.Expiry != nil {
			expires = relative(*b.Expiry, now)
		}
		identity := "-"
		if len(b.Fingerprint) >= 12 {
			identity = b.Fingerprint[:12] + "…"
		}
		sub := "-" // the sub whose login it holds, for the restore
		if b.Sub != "" {
			sub = b.Sub
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", printable(b.Name), printable(b.Of), printable(sub),
			b.Time.UTC().Format(time.RFC3339), expires, identity)
	}
	_ = tw.Flush()
	return exitOK
}

// slotBackupName is the name credslots backups lists for the newest backup
// of sub's slot.
func slotBackupName(m *credslots.Manager, sub string) string {
	rel, err := filepath.Rel(m.CredsDir(), m.SlotPath(sub)+".prev")
	if err != nil {
		return m.SlotPath(sub) + ".prev"
	}
	return filepath.ToSlash(rel)
}

func (a *app) cmdRestore(o *opts, pos []string) int {
	name, sub := pos[0], pos[1]
	// SUB need not be configured, as for add: a sub taken out of the
	// rotation (remove) comes back from a backup of its own slot, and a
	// login kept from the live path (a forced switch's .prev) that no
	// slot holds goes into a new sub's slot. The identity checks of
	// Restore still refuse another sub's login. The sub whose slot's
	// backup <live>.<sub>.prev is (a removed one's, say) is known too, so
	// that the backup is found and judged as that sub's.
	configure := []string{sub}
	base := filepath.Base(filepath.FromSlash(name))
	if owner, ok := strings.CutPrefix(base, a.tool.DefaultLiveName()+"."); ok {
		if owner, ok = strings.CutSuffix(owner, ".prev"); ok && owner != "" && owner != sub {
			configure = append(configure, owner)
		}
	}
	m, err := a.managerWith(configure)
	if err != nil && len(configure) > 1 && errors.Is(err, credslots.ErrInvalidConfig) {
		m, err = a.manager(sub) // not a sub's name after all
	}
	if err != nil {
		return a.fail(err)
	}
	from, _ := m.ActiveSubscription()
	extra := fields{"action": "restore", "backup": name, "sub": sub, "from": from}
	var ropts []credslots.SwitchOption
	if o.force {
		ropts = append(ropts, credslots.Force())
	}
	_, held := os.Lstat(m.SlotPath(sub))
	if err := m.Restore(name, sub, ropts...); err != nil {
		if errors.Is(err, fs.ErrNotExist) && strings.Contains(err.Error(), "no backup named") {
			reason := fmt.Sprintf("no backup named %q; see credslots backups", name)
			if a.json {
				a.errorJSON("no_such_backup", reason, extra)
			}
			fmt.Fprintf(a.stderr, "credslots: restore refused (no_such_backup): %s\n", printable(reason))
			return exitRefused
		}
		return a.refuse(err, "", extra)
	}
	reason := fmt.Sprintf("restored %s into %s's slot; the login it held before is kept as %s", name, sub, slotBackupName(m, sub))
	if held != nil {
		reason = fmt.Sprintf("restored %s into %s's slot; %s is back in the rotation", name, sub, sub)
	}
	if a.json {
		a.printJSON(map[string]any{"ok": true, "action": "restore", "backup": name, "sub": sub, "from": from, "changed": true, "reason": reason})
		return exitOK
	}
	fmt.Fprintln(a.stdout, printable(reason))
	return exitOK
}
