package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gptme/credslots"
	"github.com/gptme/credslots/internal/atomicfile"
	"github.com/gptme/credslots/internal/credfile"
)

// dryRunHeal runs the heal (into pos[0], or --auto when pos is empty) with
// every check on a private copy of the live path, slots, sidecars, journal
// and Claude Code's .claude.json, in a 0700 directory inside the creds dir that is removed
// afterwards, and reports what the heal would do; a heal the copy would
// make is checked against the real creds dir's leases too (see
// leaseRefusal). The real files are not touched.
func (a *app) dryRunHeal(pos []string, opts []credslots.SwitchOption) int {
	m, err := a.manager("")
	if err != nil {
		return a.fail(err)
	}
	// The name carries the temporary marker, so that a mutation sweeps the
	// directory should this process die before removing it.
	shadowDir, err := os.MkdirTemp(m.CredsDir(), "."+filepath.Base(m.LivePath())+atomicfile.TempMarker+"dryrun-")
	if err != nil {
		return a.fail(err)
	}
	defer os.RemoveAll(shadowDir)

	paths := []string{
		m.LivePath(),
		filepath.Join(m.CredsDir(), ".credslots", "journal.jsonl"),
		filepath.Join(m.CredsDir(), ".credslots-switches.jsonl"),
	}
	for _, s := range m.Subscriptions() {
		paths = append(paths, m.SlotPath(s), m.FingerprintPath(s))
	}
	for _, p := range paths {
		if err := copyEntry(m.CredsDir(), shadowDir, p); err != nil {
			return a.fail(err)
		}
	}
	// The account Claude Code is logged in to, wherever the creds dir has
	// it, goes inside the copy, where the shadow finds it: the heal's
	// account checks (a new login among them) see what the real one sees.
	if p := m.ClaudeJSONPath(); p != "" {
		if err := copyTo(p, filepath.Join(shadowDir, ".claude.json"), credfile.MaxClaudeJSON); err != nil {
			return a.fail(err)
		}
	}
	// No CLI uses the copy, so its locks are not taken.
	shadow, err := credslots.New(append(a.options(shadowDir, m.Subscriptions()), credslots.WithCLILocks(false))...)
	if err != nil {
		return a.fail(err)
	}
	var res credslots.SwitchResult
	sub := ""
	if len(pos) == 1 {
		sub = pos[0]
		res, err = shadow.HealDriftTo(sub, opts...)
	} else {
		res, err = shadow.HealDrift(opts...)
		sub, _ = shadow.LastActive()
	}
	res.Reason = strings.ReplaceAll(res.Reason, shadowDir, m.CredsDir())
	if err == nil {
		if lerr := a.leaseRefusal(m, sub); lerr != nil {
			return a.report("heal", sub, credslots.SwitchResult{From: res.From}, lerr)
		}
		res.Reason = dryRunPrefix + "would have " + res.Reason
	}
	return a.report("heal", sub, res, err)
}

// leaseRefusal is what the real heal into sub refuses for a lease, which
// the copy cannot see (it holds no lease records: copied without their
// locks they would be worse than none): sub's login live in a seat, or the
// live file holding another held lease's login. nil when neither.
func (a *app) leaseRefusal(m *credslots.Manager, sub string) error {
	leases, err := m.Leases()
	if err != nil {
		return err
	}
	login := ""
	if data, err := credslots.ReadCredentialFile(m.LivePath()); err == nil {
		login = credslots.InspectLogin(a.tool, data).Login
	}
	loginAt := func(path string) string {
		data, err := credslots.ReadCredentialFile(path)
		if err != nil {
			return ""
		}
		return credslots.InspectLogin(a.tool, data).Login
	}
	for _, l := range leases {
		if !l.Held {
			continue
		}
		where := "held by a process that inherited its lock"
		if l.Seat != "" {
			where = fmt.Sprintf("leased to %s (pid %d, since %s)", l.Seat, l.PID, l.Since.UTC().Format(time.RFC3339))
		}
		if l.Sub == sub {
			return fmt.Errorf("refusing to heal into %s: its login is %s: %w", sub, where, credslots.ErrLeased)
		}
		if login == "" {
			continue
		}
		if loginAt(m.SlotPath(l.Sub)) == login || (l.Seat != "" && loginAt(filepath.Join(l.Seat, filepath.Base(m.LivePath()))) == login) {
			return fmt.Errorf("refusing to heal into %s: the live file holds %s's login, %s: %w", sub, l.Sub, where, credslots.ErrLeased)
		}
	}
	return nil
}

// dryRunPrefix starts the reason of a dry run that passed every check.
const dryRunPrefix = "dry run, nothing changed: "

// maxCopy is the most the dry run copies of one file: the library reads no
// credential, sidecar or journal larger than that (nor a .claude.json
// larger than credfile.MaxClaudeJSON, its own bound).
const maxCopy = 1 << 20

// copyEntry copies path (relative to dir) into shadow: a symlink as a
// symlink with the same target, a regular file as a new 0600 file with the
// same modification time (the journal's checks compare it).
func copyEntry(dir, shadow, path string) error {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return err
	}
	return copyTo(path, filepath.Join(shadow, rel), maxCopy)
}

// copyTo is copyEntry of path to dst, refusing a file larger than limit.
func copyTo(path, dst string, limit int64) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	// Bounded as the library's reads are: a giant (or sparse) file is what
	// the library would refuse, so the copy refuses it too.
	if fi.Size() > limit {
		return fmt.Errorf("%s is larger than %d bytes: %w", path, limit, credslots.ErrTooLarge)
	}
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(src, limit+1))
	src.Close()
	if err != nil {
		return err
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("%s is larger than %d bytes: %w", path, limit, credslots.ErrTooLarge)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}
