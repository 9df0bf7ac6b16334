// Command benchstatus times the credslots command's status as whole
// processes, start-up included, on a creds dir of 3 captured slots and on
// one of 100, and prints each one's median and their ratio (SPEC 26: the
// status of 100 slots takes at most 1.5 times that of 3).
//
// It builds both creds dirs in a temporary directory (under -dir when
// given), with synthetic logins captured by the command itself, runs the two
// statuses in turn (large, small, large, small, ...) so that a drift in the
// machine's speed touches both alike, reads and throws away what they
// print, removes everything it created and exits 0; 1 when a run fails.
//
//	go run ./examples/benchstatus -cli path/to/credslots [-n 31] [-dir /dev/shm]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

func main() {
	cli := flag.String("cli", "", "path to a built credslots command (required)")
	rounds := flag.Int("n", 31, "timed runs of each status")
	small := flag.Int("small", 3, "slots of the small creds dir")
	large := flag.Int("large", 100, "slots of the large creds dir")
	base := flag.String("dir", "", "directory to build the creds dirs in (default: the temp dir)")
	flag.Parse()
	if err := run(*cli, *base, *rounds, *small, *large); err != nil {
		fmt.Fprintln(os.Stderr, "benchstatus:", err)
		os.Exit(1)
	}
}

func run(cli, base string, rounds, small, large int) error {
	if cli == "" {
		return errors.New("-cli is required")
	}
	if rounds < 1 || small < 1 || large < 1 {
		return errors.New("-n, -small and -large must be positive")
	}
	tmp, err := os.MkdirTemp(base, "credslots-bench-status-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	sizes := []int{large, small}
	dirs := make([]string, len(sizes))
	for i, n := range sizes {
		if dirs[i], err = credsDir(cli, tmp, n); err != nil {
			return err
		}
	}
	times := make([][]sample, len(sizes))
	for round := -2; round < rounds; round++ { // two warm-up rounds
		for i, dir := range dirs {
			s, err := status(cli, dir)
			if err != nil {
				return err
			}
			if round >= 0 {
				times[i] = append(times[i], s)
			}
		}
	}
	ratios := make([]float64, rounds)
	for r := range ratios {
		ratios[r] = float64(times[0][r].wall) / float64(times[1][r].wall)
	}
	fmt.Printf("credslots status as processes, start-up included: %d runs of each, in turn; medians\n", rounds)
	for i := len(sizes) - 1; i >= 0; i-- {
		fmt.Printf("  %3d slots  %6.2f ms wall  %6.2f ms cpu\n", sizes[i], ms(median(times[i], wallOf)), ms(median(times[i], cpuOf)))
	}
	fmt.Printf("  %d ÷ %d    %6.2f wall (median of the pairs' ratios %.2f)  %.2f cpu; SPEC 26 goal: at most 1.5\n",
		large, small,
		float64(median(times[0], wallOf))/float64(median(times[1], wallOf)), medianFloat(ratios),
		float64(median(times[0], cpuOf))/float64(median(times[1], cpuOf)))
	return nil
}

// credsDir builds a creds dir of n fresh Claude Code slots s1..sn with the
// live symlink on s1, and captures each with the command.
func credsDir(cli, parent string, n int) (string, error) {
	dir := filepath.Join(parent, strconv.Itoa(n)+"-slots")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	expiry := time.Now().Add(30 * 24 * time.Hour).UnixMilli()
	for i := 1; i <= n; i++ {
		sub := "s" + strconv.Itoa(i)
		doc := fmt.Sprintf(`{"claudeAiOauth":{"accessToken":"at-%s","refreshToken":"rt-%s","expiresAt":%d}}`, sub, sub, expiry)
		if err := os.WriteFile(filepath.Join(dir, ".credentials.json."+sub), []byte(doc), 0o600); err != nil {
			return "", err
		}
	}
	if err := os.Symlink(".credentials.json.s1", filepath.Join(dir, ".credentials.json")); err != nil {
		return "", err
	}
	for i := 1; i <= n; i++ {
		out, err := exec.Command(cli, "--dir", dir, "capture", "s"+strconv.Itoa(i)).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("capture s%d: %v: %s", i, err, out)
		}
	}
	return dir, nil
}

// sample is one run's wall-clock time and its user plus system time.
type sample struct{ wall, cpu time.Duration }

func wallOf(s sample) time.Duration { return s.wall }
func cpuOf(s sample) time.Duration  { return s.cpu }

// status runs the command's status on dir once, its output read through a
// pipe and thrown away.
func status(cli, dir string) (sample, error) {
	cmd := exec.Command(cli, "--dir", dir, "status")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return sample{}, fmt.Errorf("status of %s: %w", filepath.Base(dir), err)
	}
	return sample{wall: time.Since(start), cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}, nil
}

func median(samples []sample, of func(sample) time.Duration) time.Duration {
	d := make([]time.Duration, len(samples))
	for i, s := range samples {
		d[i] = of(s)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	if len(d)%2 == 1 {
		return d[len(d)/2]
	}
	return (d[len(d)/2-1] + d[len(d)/2]) / 2
}

func medianFloat(f []float64) float64 {
	f = append([]float64(nil), f...)
	sort.Float64s(f)
	if len(f)%2 == 1 {
		return f[len(f)/2]
	}
	return (f[len(f)/2-1] + f[len(f)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
