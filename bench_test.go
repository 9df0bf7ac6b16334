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
		if _, err := m.CaptureSlotFingerprint(sub); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := m.SwitchTo(subs[n-1], "bench"); err != nil {
		b.Fatal(err)
	}
	return m
}

// benchSizes runs op b.N times over a manager with 3 and with 100 slots.
func benchSizes(b *testing.B, op func(b *testing.B, m *Manager)) {
	for _, n := range []int{3, 100} {
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

// BenchmarkSwitchToRoundTrip switches back and forth between two slots: each
// iteration is two full switches (lock, checks, swap, fingerprint capture).
func BenchmarkSwitchToRoundTrip(b *testing.B) {
	m := benchManager(b, 3)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, sub := range []string{"sub000", "sub001"} {
			if res, err := m.SwitchTo(sub, "bench"); err != nil || !res.OK {
				b.Fatal(err)
			}
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

// BenchmarkSwitchToCost is one switch between two captured slots, with the
// Claude Code locks held and without: the difference is what the CLI locks
// cost; the journal's two fsynced appends are in both (TestSwitchSyncCount
// pins the fsyncs).
func BenchmarkSwitchToCost(b *testing.B) {
	for _, locks := range []bool{true, false} {
		b.Run(fmt.Sprintf("cli-locks=%v", locks), func(b *testing.B) {
			m := benchManager(b, 3, WithCLILocks(locks))
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

// BenchmarkJournalRecord is one fsynced journal append under the lock.
func BenchmarkJournalRecord(b *testing.B) {
	m := benchManager(b, 3)
	e := JournalEntry{Time: testNow, Op: opSwitch, Phase: phaseDone, ID: newChangeID(), Sub: "sub000", Reason: "bench"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.record(e); err != nil {
			b.Fatal(err)
		}
	}
}
