package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runCLI shows the credslots command on a second temporary creds dir whose
// fixtures are shifted to the real clock, since the command reads time.Now.
func runCLI(bin, fixtures string) error {
	dir, err := os.MkdirTemp("", "credslots-cli-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	now := time.Now()
	for sub, file := range map[string]string{"bob": "bob.json", "alice": "alice.json", "erik": "erik.json"} {
		if err := shiftFixture(filepath.Join(fixtures, file), filepath.Join(dir, ".credentials.json."+sub), now); err != nil {
			return err
		}
	}
	fmt.Printf("\n--- the credslots command, on %s (expiries shifted to the real clock) ---\n", dir)

	cli := func(want int, args ...string) error {
		full := append([]string{"--dir", dir}, args...)
		shown := make([]string, len(args))
		for i, a := range args {
			shown[i] = a
			if strings.ContainsAny(a, " \t") {
				shown[i] = "'" + a + "'"
			}
		}
		fmt.Printf("\n$ credslots %s\n", strings.Join(shown, " "))
		cmd := exec.Command(bin, full...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		} else if err != nil {
			return err
		}
		fmt.Print(strings.ReplaceAll(out.String(), dir, "$DIR"))
		fmt.Printf("(exit %d)\n", code)
		if code != want {
			return fmt.Errorf("credslots %s: exit %d, want %d", strings.Join(args, " "), code, want)
		}
		return nil
	}
	steps := []func() error{
		func() error { return cli(0, "switch", "bob", "--reason", "start of day") },
		func() error { return cli(0, "capture", "erik") },
		func() error { return cli(0, "status") },
		func() error { return cli(1, "switch", "alice", "--force") },
		func() error {
			// The CLI refreshes its token, replacing the symlink. It does so
			// hours after a switch; a pause longer than the file system's
			// timestamp tick keeps the order visible to heal --auto.
			time.Sleep(50 * time.Millisecond)
			live := filepath.Join(dir, ".credentials.json")
			if err := os.Remove(live); err != nil {
				return err
			}
			fmt.Println("\n# the agent CLI refreshes its token: a regular file replaces the symlink")
			return shiftFixture(filepath.Join(fixtures, "bob-refreshed.json"), live, now)
		},
		func() error { return cli(1, "check") },
		func() error { return cli(0, "heal", "--auto", "--dry-run") },
		func() error { return cli(0, "heal", "--auto") },
		func() error { return cli(0, "check") },
		// The heal kept bob's previous token; backups lists it, restore
		// would put it back.
		func() error { return cli(0, "backups") },
		func() error { return cli(0, "restore", ".credentials.json.bob.prev", "bob") },
		// bob hits its quota: it rests, and switch --next picks the best
		// usable other sub (alice is expired).
		func() error { return cli(0, "rest", "bob", "--for", "5h", "--reason", "429 from the API") },
		func() error { return cli(0, "switch", "--next", "--reason", "bob hit its quota") },
		func() error { return cli(1, "switch", "--next") },
		func() error {
			// A /login for a new account replaces the live symlink with a
			// regular file holding a login that is in no slot yet.
			time.Sleep(50 * time.Millisecond)
			live := filepath.Join(dir, ".credentials.json")
			if err := os.Remove(live); err != nil {
				return err
			}
			fmt.Println("\n# /login as a new account: a regular file replaces the symlink")
			return shiftFixture(filepath.Join(fixtures, "intruder.json"), live, now)
		},
		func() error { return cli(0, "add", "dave") },
		func() error { return cli(0, "status") },
		func() error { return cli(0, "log", "-n", "8") },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// shiftFixture copies a Claude Code fixture to dest (0600), moving its
// expiry by the distance between the real clock and the demo's pinned one.
func shiftFixture(src, dest string, now time.Time) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	oauth, ok := doc["claudeAiOauth"].(map[string]any)
	exp, isNum := oauth["expiresAt"].(float64)
	if !ok || !isNum {
		return fmt.Errorf("%s: no claudeAiOauth.expiresAt", src)
	}
	oauth["expiresAt"] = int64(exp) + now.Sub(demoNow).Milliseconds()
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(dest, append(out, '\n'), 0o600)
}
