//go:build unix && floorreport

package credslots

import (
	"fmt"
	"os"
	"sort"
	"testing"
	"time"
)

// timePer is the mean time of one op over a batch of n.
func timePer(op func() error, n int) (time.Duration, error) {
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := op(); err != nil {
			return 0, err
		}
	}
	return time.Since(start) / time.Duration(n), nil
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// TestFloorReport prints, per operation, credslots and its floor measured in
// the same run: rounds of interleaved batches (the side going first
// alternates), medians of the per-op times, and the median of the rounds'
// ratios. The switch is
// measured on tmpfs with the reads, and on a real disk, where its two
// fsyncs are most of the floor; each time beside its floor and, for
// reference, beside a bare flip that skips the spec's checks and records.
func TestFloorReport(t *testing.T) {
	base := floorBaseDir(t)
	fmt.Printf("floor report: %s, %d rounds of interleaved batches, medians\n\n", base, floorRounds)
	fmt.Println("| op | credslots | floor | ratio | ratio of the medians |")
	fmt.Println("|---|---|---|---|---|")
	for _, p := range floorPairs(t, base) {
		reportPair(t, p.name, p)
	}
	disk := floorDiskDir(t)
	if disk == "" {
		fmt.Println("\n(no real disk: set CREDSLOTS_BENCH_DISK to a directory on one)")
		return
	}
	kind := fsKind(disk)
	if kind == "" {
		kind = "real disk"
	}
	reportPair(t, "SwitchTo with CLI locks, "+kind+", fsyncs included", switchPair(t, disk))
	reportPair(t, "SwitchTo with CLI locks, "+kind+", fsyncs included, beside a bare flip", bareSwitchPair(t, disk))
	fmt.Printf("\n(real disk: %s)\n", disk)
}

// floorRounds is how many interleaved rounds each pair runs.
const floorRounds = 61

// reportPair measures one pair and prints its row.
func reportPair(t *testing.T, name string, p floorPair) {
	t.Helper()
	batch := func(op func() error) int {
		// Enough ops for a batch of about 2 ms, at least 5.
		per, err := timePer(op, 20)
		if err != nil {
			t.Fatal(err)
		}
		return max(int(2*time.Millisecond/(per+1)), 5)
	}
	nc, nf := batch(p.credslots), batch(p.floor)
	var cs, fl []time.Duration
	for r := 0; r < floorRounds; r++ {
		sides := []struct {
			op  func() error
			n   int
			out *[]time.Duration
		}{{p.credslots, nc, &cs}, {p.floor, nf, &fl}}
		if r%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, s := range sides {
			d, err := timePer(s.op, s.n)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			*s.out = append(*s.out, d)
		}
	}
	// The ratio is the median of the rounds' own ratios: both sides of a
	// round ran back to back, so a slow stretch of the machine (a shared
	// disk's, above all) weighs on both of them, not on one side's median.
	// The ratio of the two medians is printed beside it.
	ratios := make([]time.Duration, len(cs))
	for r := range cs {
		ratios[r] = time.Duration(float64(cs[r]) / float64(fl[r]) * 1e6)
	}
	c, f := median(cs), median(fl)
	fmt.Printf("| %s | %s | %s | %.2f | %.2f |\n", name, us(c), us(f), float64(median(ratios))/1e6, float64(c)/float64(f))
}

// us prints a duration in microseconds.
func us(d time.Duration) string {
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

// floorDiskDir is a directory on a real disk for the switch's second row:
// CREDSLOTS_BENCH_DISK, else the temp dir when it is not tmpfs; "" when
// there is none.
func floorDiskDir(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("CREDSLOTS_BENCH_DISK")
	if base == "" {
		if kind := fsKind(os.TempDir()); kind == "" || kind == "tmpfs" {
			return ""
		}
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "credslots-floor-disk-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
