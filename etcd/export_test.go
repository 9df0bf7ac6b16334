package etcd

import (
	"context"
	"syscall"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// StopAfterWriteBack makes every Sync fail with err between its transaction
// and the seat record's update, as a lessee killed there (or an answer
// lost), until the returned func is called or the test ends.
func StopAfterWriteBack(t testing.TB, err error) (resume func()) {
	return OnPoolPoint(t, func(point string) error {
		if point == "committed" {
			return err
		}
		return nil
	})
}

// OnPoolPoint makes f run at each named point of a write-back, an import
// or a waiting lease ("checked", "committed", "waiting"; see poolHook),
// until the returned func is called or the test ends.
func OnPoolPoint(t testing.TB, f func(point string) error) (resume func()) {
	old := poolHook
	poolHook = f
	resume = func() { poolHook = old }
	t.Cleanup(resume)
	return resume
}

// SettleSeat settles what seat holds as the next lease of it does once the
// seat's lessee is gone, whether or not its lease has ended.
func SettleSeat(ctx context.Context, p *Pool, seat string) (*Settled, error) {
	rec, err := readRecord(seat)
	if err != nil || rec == nil {
		return nil, err
	}
	return p.settle(ctx, seat, rec)
}

// GoneFromSeat drops l's hold on its seat as the end of its process does
// (its lock file closed), leaving the Lease otherwise as it is.
func GoneFromSeat(l *Lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seatLock != nil {
		_ = l.seatLock.Close()
		l.seatLock = nil
	}
}

// WatchFrom is the revision l's watch of its lease key starts at (0: the
// member's current one).
func WatchFrom(l *Lease) int64 {
	if l.keyRev == 0 {
		return 0
	}
	return l.keyRev + 1
}

// LeaseKey is the key a lease of sub holds in p.
func LeaseKey(p *Pool, sub string) string { return p.leaseKey(sub) }

// SeatsDoNotLock makes every seat's lock fail as on a file system without
// locks, until the test ends.
func SeatsDoNotLock(t testing.TB) {
	old := flockSeat
	flockSeat = func(int) error { return syscall.ENOLCK }
	t.Cleanup(func() { flockSeat = old })
}

// HoldWatches makes every watch the pool opens from now on wait, unopened,
// until its context ends, as when the member that would acknowledge it
// stops answering; until the test ends.
func HoldWatches(t testing.TB) {
	old := openWatch
	openWatch = func(ctx context.Context, _ *clientv3.Client, _ string, _ ...clientv3.OpOption) clientv3.WatchChan {
		<-ctx.Done()
		ch := make(chan clientv3.WatchResponse)
		close(ch)
		return ch
	}
	t.Cleanup(func() { openWatch = old })
}
