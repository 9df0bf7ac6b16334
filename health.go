package credslots

// This file holds what makes a creds dir healthy beyond its files being
// intact: that rotation will work. Status adds these problems.

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/gptme/credslots/internal/credfile"
	"github.com/gptme/credslots/internal/disk"
	"github.com/gptme/credslots/internal/jsonscan"
)

// rootShape reports whether a document is a credential of format f at all
// (whatever its expiry or freshness), or why not (see credfile.RootShape).
// root is what jsonscan.Document accepted, trimmed (the caller has scanned
// it once already); nil for data that is not JSON.
func rootShape(f Format, root []byte) (bool, string) {
	return credfile.RootShape(f.Name(), root)
}

// anyRootShape is rootShape for any format.
func anyRootShape(root []byte) bool {
	for _, f := range Formats() {
		if ok, _ := rootShape(f, root); ok {
			return true
		}
	}
	return false
}

// unitHint says when an expiry looks written in the wrong unit: seconds
// where the format keeps milliseconds (it reads as a time in early 1970),
// or milliseconds where it keeps seconds (it reads as a time tens of
// thousands of years away). "" when it looks right.
func unitHint(f Format, expiry time.Time) string {
	plausible := func(t time.Time) bool { return t.Year() >= 2000 && t.Year() < 2200 }
	field := f.expiryField()
	if f.Name() == "codex" {
		if expiry.Year() >= 2200 {
			if ms := time.UnixMilli(expiry.Unix()).UTC(); plausible(ms) {
				return fmt.Sprintf("%s %d looks like milliseconds written where seconds belong (as milliseconds it is %s)",
					field, expiry.Unix(), formatTime(ms))
			}
		}
		return ""
	}
	if expiry.Year() < 2000 {
		if s := time.Unix(expiry.UnixMilli(), 0).UTC(); plausible(s) {
			return fmt.Sprintf("%s %d looks like seconds written where milliseconds belong (as seconds it is %s)",
				field, expiry.UnixMilli(), formatTime(s))
		}
	}
	return ""
}

// slotProblems are the problems of one slot that rotation depends on: a
// configured sub with no slot, a slot that is not a credential at all, an
// expiry in the wrong unit, and an active sub that rests. c is the slot as
// the format parsed data.
func (m *Manager) slotProblems(ss SlotStatus, c credential, data []byte, rerr error) []string {
	var out []string
	name := filepath.Base(ss.Path)
	switch {
	case !ss.Exists:
		out = append(out, fmt.Sprintf("sub %s has no slot (%s is missing): it cannot be switched to; log in to it and run credslots add %s", ss.Sub, name, ss.Sub))
	case rerr == nil:
		if ok, why := credfile.Shape(m.cfg.format.Name(), data); !ok {
			out = append(out, fmt.Sprintf("slot %s (%s) is not a %s credential at all: %s", ss.Sub, name, m.cfg.format.Name(), why))
		} else if c.hasExpiry() {
			if hint := unitHint(m.cfg.format, c.expiry); hint != "" {
				out = append(out, fmt.Sprintf("slot %s: %s", ss.Sub, hint))
			}
		}
	}
	if ss.Active && ss.RestingUntil != nil {
		why := ""
		if ss.RestReason != "" {
			why = " (" + ss.RestReason + ")"
		}
		out = append(out, fmt.Sprintf("active sub %s rests until %s%s: switch to another sub (credslots switch --next), or end the rest (credslots rest %s --clear)", ss.Sub, formatTime(*ss.RestingUntil), why, ss.Sub))
	}
	return out
}

// passedOver is why rotation cannot use a sub; "" when it can.
func passedOver(ss SlotStatus, ierr, serr error) string {
	switch {
	case serr != nil:
		return "state unknown"
	case !ss.Exists:
		return "no slot"
	case !ss.Fresh:
		return ss.FreshReason
	case ierr != nil:
		return "fingerprint unreadable"
	case ss.Identity.Drift:
		return "identity drift"
	case ss.Invalid:
		return "rejected by the server"
	case ss.RestingUntil != nil:
		return "resting until " + formatTime(*ss.RestingUntil)
	}
	return ""
}

// addAdvice is how to keep a further login with credslots add: where the
// CLI's login writes through the live symlink (see
// [Format.LoginWritesThrough]), the link must go first, or the login
// overwrites the slot it points at.
func (m *Manager) addAdvice() string {
	if !m.cfg.format.LoginWritesThrough() {
		return "log in to another account and run credslots add NAME"
	}
	return "remove the live link first (rm " + m.live + ": only the link goes, the slot keeps its login; a login through the link would overwrite that slot), then log in to another account and run credslots add NAME"
}

// rotationProblem is the problem when no sub but the active one is usable
// (why lists, per other sub, why not); "" when another is. advice is how
// to add a login (see addAdvice).
func rotationProblem(active string, usable int, why []string, advice string) string {
	if usable > 0 {
		return ""
	}
	besides := "no usable sub to switch to"
	if active != "" {
		besides = "no usable sub besides the active one (" + active + ")"
	}
	if len(why) == 0 {
		return besides + ": it is the only sub; " + advice
	}
	return besides + ": " + strings.Join(why, "; ")
}

// copySuffixes end the names of copies that people and editors leave beside
// a file: backups, editor swap and save files, patch leftovers.
var copySuffixes = []string{".bak", ".backup", ".old", ".orig", ".rej", ".save", ".swp", ".swo", ".swx", ".copy", "~"}

// copyName reports whether a file name is that of such a copy.
func copyName(name string) bool {
	lower := strings.ToLower(name)
	for _, s := range copySuffixes {
		if strings.HasSuffix(lower, s) {
			return true
		}
	}
	return false
}

// credentialContent reports whether the file at path may be a slot by its
// content: anything but a whole JSON document that is no credential (of
// the format whose slot template tmpl is, or else of any format). A file
// that cannot be read, or is not JSON (a CLI may be writing it), is kept,
// and Status shows it.
func credentialContent(path, tmpl string) bool {
	data, err := disk.ReadRegular(path)
	if err != nil {
		return true
	}
	root, problem := jsonscan.Document(data)
	if problem != "" {
		return true
	}
	for _, f := range Formats() {
		if f.DefaultSlotTemplate() == tmpl {
			ok, _ := rootShape(f, root)
			return ok
		}
	}
	return anyRootShape(root)
}

// emailOf is the e-mail address of an oauthAccount a sidecar remembers;
// "" when none.
func emailOf(acct []byte) string {
	email, _ := jsonscan.String(jsonscan.Fields(acct, "emailAddress")[0])
	return email
}
