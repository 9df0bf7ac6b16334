package credslots

import (
	"fmt"
	"testing"
)

// benchManager builds a creds dir with n fresh slots, the live symlink on the
// last one, and every fingerprint captured.
func benchManager(b *testing.B, n int, opts ...Option) *Manager {
	b.Helper()
	subs := make([]string, n)
	for i := range subs {
		subs[i] = fmt.Sprintf("sub%03d", i)
	}
	dir := b.TempDir()
	m, err := New(append([]Option{WithCredsDir(dir), WithSubscriptions(subs...), WithClock(fixedClock)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	for _, sub := range subs {
		writeSlot(b, m.SlotPath(sub), fresh, "rt-"+sub)
		writeSidecar(b, m, sub, "rt-"+sub)
	}
	if _, err := m.SwitchTo(subs[n-1], "bench"); err != nil {
		b.Fatal(err)
	}
	return m
}

// benchSizes runs op b.N times over a manager with 3, 100 and 1,000 slots.
func benchSizes(b *testing.B, op func(b *testing.B, m *Manager)) {
	for _, n := range []int{3, 100, 1000} {
		b.Run(fmt.Sprintf("slots=%d", n), func(b *testing.B) {
			m := benchManager(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				op(b, m)
			}
		})
	}
}

func BenchmarkActiveSubscription(b *testing.B) {
	benchSizes(b, func(b *testing.B, m *Manager) {
		if _, ok := m.ActiveSubscription(); !ok {
			b.Fatal("no active sub")
		}
	})
}

func BenchmarkSlotIsFresh(b *testing.B) {
	m := benchManager(b, 3)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if ok, _ := m.SlotIsFresh("sub000"); !ok {
			b.Fatal("not fresh")
		}
	}
}

func BenchmarkDetectLiveSlotDrift(b *testing.B) {
	benchSizes(b, func(b *testing.B, m *Manager) {
		if info, err := m.DetectLiveSlotDrift(); err != nil || info.Drift {
			b.Fatal(err)
		}
	})
}

func BenchmarkDetectSlotIdentityDrift(b *testing.B) {
	m := benchManager(b, 3)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		info, err := m.DetectSlotIdentityDrift("sub001")
		if err != nil || info.Drift {
			b.Fatal(err)
		}
	}
}

func BenchmarkStatus(b *testing.B) {
	benchSizes(b, func(b *testing.B, m *Manager) {
		if _, err := m.Status(); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkSwitchTo is one switch between two captured slots among 3, 100
// and 1,000, with the Claude Code locks held (the default) and without: the
// difference is what the CLI locks cost; the journal's fsynced intent is in
// both (TestSwitchCalls pins the calls and fsyncs).
func BenchmarkSwitchTo(b *testing.B) {
	for _, locks := range []bool{true, false} {
		for _, n := range []int{3, 100, 1000} {
			b.Run(fmt.Sprintf("cli-locks=%v/slots=%d", locks, n), func(b *testing.B) {
				m := benchManager(b, n, WithCLILocks(locks))
				subs := []string{"sub000", "sub001"}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := m.SwitchTo(subs[i%2], "bench"); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkJournalRecord is one journal intent: an fsynced append.
func BenchmarkJournalRecord(b *testing.B) {
	m := benchManager(b, 3)
	e := JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseIntent, ID: newChangeID(), Sub: "sub000", Reason: "bench"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.record(e); err != nil {
			b.Fatal(err)
		}
	}
}
