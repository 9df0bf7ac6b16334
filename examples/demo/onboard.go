package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runOnboarding starts where nearly everyone starts: one Claude Code login
// in a regular .credentials.json and no slots. It runs the credslots
// command through init, add (a second login), a switch, a token refresh
// healed into its slot, and a switch back.
func runOnboarding(bin, fixtures string) error {
	dir, err := os.MkdirTemp("", "credslots-onboarding-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	now := time.Now()
	live := filepath.Join(dir, ".credentials.json")
	account := func(name string) error {
		doc := fmt.Sprintf(`{"numStartups": 12, "oauthAccount": {"accountUuid": "acc-%s", "emailAddress": "%s@example.com"}}`+"\n", name, name)
		return os.WriteFile(filepath.Join(dir, ".claude.json"), []byte(doc), 0o600)
	}
	// The CLI writes a regular file over the live path, as a /login or a
	// token refresh does; a pause past the file system's timestamp tick
	// keeps the order visible.
	cliWrites := func(fixture string) error {
		time.Sleep(50 * time.Millisecond)
		tmp := live + ".tmp.demo"
		if err := shiftFixture(filepath.Join(fixtures, fixture), tmp, now); err != nil {
			return err
		}
		return os.Rename(tmp, live)
	}
	if err := shiftFixture(filepath.Join(fixtures, "bob.json"), live, now); err != nil {
		return err
	}
	if err := account("bob"); err != nil {
		return err
	}
	fmt.Printf("\n--- the first five minutes: one plain login in %s ---\n", dir)

	cli := func(want int, args ...string) error {
		shown := make([]string, len(args))
		for i, a := range args {
			shown[i] = a
			if strings.ContainsAny(a, " \t") {
				shown[i] = "'" + a + "'"
			}
		}
		fmt.Printf("\n$ credslots %s\n", strings.Join(shown, " "))
		cmd := exec.Command(bin, append([]string{"--dir", dir}, args...)...)
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
	note := func(s string) func() error {
		return func() error { fmt.Printf("\n# %s\n", s); return nil }
	}
	steps := []func() error{
		func() error { return cli(1, "check") },
		func() error { return cli(0, "init", "bob") },
		note("/login as a second account: Claude Code writes its login over the live path"),
		func() error {
			if err := cliWrites("erik.json"); err != nil {
				return err
			}
			return account("erik")
		},
		func() error { return cli(0, "add", "erik") },
		func() error { return cli(0, "switch", "bob", "--reason", "erik hit its quota") },
		func() error { return cli(0, "switch", "bob") },
		note("hours later Claude Code refreshes bob's token: a regular file replaces the symlink"),
		func() error { return cliWrites("bob-refreshed.json") },
		func() error { return cli(1, "check") },
		func() error { return cli(0, "heal", "--auto") },
		func() error { return cli(0, "switch", "--next", "--reason", "bob hit its quota") },
		func() error { return cli(0, "status") },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}
