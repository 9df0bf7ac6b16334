// Command demo walks through the incidents credslots guards against, on a
// temporary creds dir built from the synthetic fixtures in testdata/claude.
// It prints each step and its outcome, exits 0, and removes everything it
// created.
//
// With -cli it first runs the credslots command from one plain login
// (init, add, a switch, a refresh healed, a switch), and after the
// incidents the rest of the command on a second temporary dir.
//
//	go run ./examples/demo [-fixtures testdata/claude] [-cli path/to/credslots]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gptme/credslots"
)

// demoNow pins the clock so the fixtures' fixed expiries read the same on any day.
var demoNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func main() {
	fixtures := flag.String("fixtures", filepath.Join("testdata", "claude"), "directory of credential fixtures")
	cli := flag.String("cli", "", "path to a built credslots command to demonstrate too")
	flag.Parse()
	if *cli != "" {
		if err := runOnboarding(*cli, *fixtures); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			os.Exit(1)
		}
	}
	if err := run(*fixtures); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	if *cli != "" {
		if err := runCLI(*cli, *fixtures); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			os.Exit(1)
		}
	}
}

type demo struct {
	fixtures string
	dir      string
	m        *credslots.Manager
	busy     bool
	step     int
}

func run(fixtures string) error {
	dir, err := os.MkdirTemp("", "credslots-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	d := &demo{fixtures: fixtures, dir: dir}
	d.m, err = credslots.New(
		credslots.WithCredsDir(dir),
		credslots.WithSubscriptions("bob", "alice", "erik"),
		credslots.WithClock(func() time.Time { return demoNow }),
		credslots.WithLockGuard(func() []string {
			if d.busy {
				return []string{"agent-session-1"}
			}
			return nil
		}),
		credslots.WithOnSwitch(func(sub, reason string) {
			fmt.Printf("    on-switch hook: sub=%s reason=%q\n", sub, reason)
		}),
	)
	if err != nil {
		return err
	}
	fmt.Printf("creds dir %s, clock pinned at %s\n", dir, demoNow.Format(time.RFC3339))
	for _, sub := range []string{"bob", "alice", "erik"} {
		if err := d.copyFixture(sub+".json", d.m.SlotPath(sub)); err != nil {
			return err
		}
		ok, why := d.m.SlotIsFresh(sub)
		fmt.Printf("  slot %-5s fresh=%-5v %s\n", sub, ok, why)
	}

	steps := []struct {
		title string
		do    func() error
	}{
		{"switch into a fresh slot", d.switchFresh},
		{"an expired slot is refused, even with Force", d.switchExpired},
		{"a busy-signal defers an automated switch", d.switchDeferred},
		{"the CLI's refresh replaces the symlink: drift detected, then healed", d.refreshAndHeal},
		{"a login written through the symlink: identity drift detected", d.loginThroughSymlink},
	}
	for _, s := range steps {
		d.step++
		fmt.Printf("\n%d. %s\n", d.step, s.title)
		if err := s.do(); err != nil {
			return fmt.Errorf("step %d: %w", d.step, err)
		}
	}
	fmt.Println("\nlibrary walkthrough done: every step behaved as expected; its temporary creds dir is removed")
	return nil
}

func (d *demo) copyFixture(name, dest string) error {
	data, err := os.ReadFile(filepath.Join(d.fixtures, name))
	if err != nil {
		return fmt.Errorf("read fixture (run from the module root or pass -fixtures): %w", err)
	}
	return os.WriteFile(dest, data, 0o600)
}

// expect prints a result and checks it is the outcome the step demonstrates.
func expect(res credslots.SwitchResult, err, want error) error {
	fmt.Printf("    ok=%v reason=%q\n", res.OK, res.Reason)
	if len(res.DeferredLocks) > 0 {
		fmt.Printf("    deferred by %v\n", res.DeferredLocks)
	}
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		return fmt.Errorf("unexpected outcome: %v", err)
	}
	return nil
}

func (d *demo) showLive() {
	target, err := os.Readlink(d.m.LivePath())
	active, _ := d.m.ActiveSubscription()
	if err != nil {
		fmt.Printf("    live: regular file (not a symlink), active=%q\n", active)
		return
	}
	fmt.Printf("    live -> %s, active=%q\n", target, active)
}

func (d *demo) switchFresh() error {
	res, err := d.m.SwitchTo("bob", "start of day")
	if err := expect(res, err, nil); err != nil {
		return err
	}
	d.showLive()
	for _, sub := range []string{"alice", "erik"} {
		if _, err := d.m.CaptureSlotFingerprint(sub); err != nil {
			return err
		}
	}
	fmt.Println("    identity fingerprints captured for every slot")
	return nil
}

func (d *demo) switchExpired() error {
	res, err := d.m.SwitchTo("alice", "bob quota exhausted", credslots.Force())
	if err := expect(res, err, credslots.ErrNotFresh); err != nil {
		return err
	}
	d.showLive()
	return nil
}

func (d *demo) switchDeferred() error {
	d.busy = true
	res, err := d.m.SwitchTo("erik", "cron rotation")
	d.busy = false
	if err := expect(res, err, credslots.ErrDeferred); err != nil {
		return err
	}
	d.showLive()
	return nil
}

func (d *demo) refreshAndHeal() error {
	// The CLI writes its refreshed token to a temp file and renames it over
	// the live path, replacing the symlink with a regular file.
	tmp := d.m.LivePath() + ".cli-refresh"
	if err := d.copyFixture("bob-refreshed.json", tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, d.m.LivePath()); err != nil {
		return err
	}
	d.showLive()
	drift, err := d.m.DetectLiveSlotDrift()
	if err != nil {
		return err
	}
	fmt.Printf("    drift=%v matching slot=%q\n", drift.Drift, drift.MatchingSlot)
	if !drift.Drift {
		return errors.New("drift not detected")
	}
	fmt.Println("    switching away now would strand the only copy of the new token:")
	res, err := d.m.SwitchTo("erik", "rotate")
	if err := expect(res, err, credslots.ErrLiveDrifted); err != nil {
		return err
	}
	fmt.Println("    heal into bob (the sub that was active before the refresh):")
	res, err = d.m.HealDriftTo("bob")
	if err := expect(res, err, nil); err != nil {
		return err
	}
	d.showLive()
	if _, err := os.Stat(d.m.SlotPath("bob") + ".prev"); err == nil {
		fmt.Println("    bob's previous token kept as .credentials.json.bob.prev")
	}
	return nil
}

func (d *demo) loginThroughSymlink() error {
	// A /login for another account writes through the live symlink, so the
	// content lands in bob's slot and the hashes still match.
	data, err := os.ReadFile(filepath.Join(d.fixtures, "intruder.json"))
	if err != nil {
		return err
	}
	f, err := os.OpenFile(d.m.LivePath(), os.O_WRONLY|os.O_TRUNC, 0)
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
	drift, err := d.m.DetectLiveSlotDrift()
	if err != nil {
		return err
	}
	fmt.Printf("    hash drift=%v (live and slot still match)\n", drift.Drift)
	ident, err := d.m.DetectSlotIdentityDrift("bob")
	if err != nil {
		return err
	}
	fmt.Printf("    identity drift=%v: %s\n", ident.Drift, ident.Reason)
	if !ident.Drift {
		return errors.New("identity drift not detected")
	}
	// Moving away is fine; the evidence stays in bob's sidecar.
	if _, err := d.m.SwitchTo("erik", "rotate"); err != nil {
		return err
	}
	res, err := d.m.SwitchTo("bob", "rotate back")
	return expect(res, err, credslots.ErrIdentityDrift)
}
