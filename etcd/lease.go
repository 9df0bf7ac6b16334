package etcd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gptme/credslots"
)

// LeaseOption configures [Pool.Lease].
type LeaseOption func(*leaseConfig)

type leaseConfig struct {
	sub  string
	wait bool
}

// LeaseSub leases this sub; without it Lease picks the best usable free one.
func LeaseSub(sub string) LeaseOption { return func(c *leaseConfig) { c.sub = sub } }

// LeaseWait waits, bounded by the context, until a sub is free. An etcd
// lease that ends during the wait (it holds no sub yet) is replaced by a
// new one, and the wait goes on.
func LeaseWait() LeaseOption { return func(c *leaseConfig) { c.wait = true } }

// Lease is one sub's login, live in one seat. Its key in etcd is bound to a
// [concurrency.Session]; [Lease.Done] closes as soon as the lease can no
// longer be trusted (not renewed within half the TTL, ended by the cluster,
// the key gone) or it was released. Its methods are safe for concurrent use.
type Lease struct {
	p    *Pool
	sub  string
	seat string
	sess *concurrency.Session
	id   clientv3.LeaseID

	mu       sync.Mutex
	seatLock *os.File // the seat's flock, held until the lease ends (see lockSeat)
	rev      int64    // the login's revision the seat's login derives from
	keyRev   int64    // the revision at which the lease key was made
	stored   []byte   // the login as stored at rev
	record   seatRecord
	released bool

	stateMu   sync.Mutex
	lastRenew time.Time // when the last acknowledged keep-alive was sent
	endedAt   time.Time // when the lease was seen ended by the cluster (see lose)
	lostErr   error
	done      chan struct{}
	stop      chan struct{}
	wg        sync.WaitGroup
}

// Sub is the leased sub.
func (l *Lease) Sub() string { return l.sub }

// Seat is the seat directory the login is live in.
func (l *Lease) Seat() string { return l.seat }

// ID is the etcd lease the lease key is bound to.
func (l *Lease) ID() int64 { return int64(l.id) }

// TTL is the session's TTL.
func (l *Lease) TTL() time.Duration { return l.p.ttl }

// Done is closed when the lease is lost or released.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Err is nil while the lease holds; then it wraps [ErrLeaseLost] or says it
// was released.
func (l *Lease) Err() error {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	return l.lostErr
}

// Expires is the earliest time the cluster may end the lease: the TTL after
// the last acknowledged renewal was sent. A holder must stop using the login
// before then. Once the lease is seen ended by the cluster (revoked, its key
// removed, a write-back fenced out), the login may be another's already:
// Expires is then the time that was seen.
func (l *Lease) Expires() time.Time {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	if exp := l.lastRenew.Add(l.p.ttl); l.endedAt.IsZero() || exp.Before(l.endedAt) {
		return exp
	}
	return l.endedAt
}

// Lease leases a sub's login for seat (a directory, created 0700 if
// missing) and writes it there as the CLI's credential file, 0600,
// atomically; for Claude Code only claudeAiOauth goes in, every other key
// of a seat file stays. What an earlier, ended lease left in the seat is
// settled first: written back if the stored login did not change since, else
// kept as a sealed backup. Without [LeaseSub] it picks the fresh free sub
// whose login lasts longest. It fails wrapping [ErrLeased] for a sub leased
// elsewhere and [ErrNoFreeSub] (saying why each was passed over) when none is
// free, unless [LeaseWait] waits for one: then a context that ends returns
// that refusal, wrapping the context's error too.
func (p *Pool) Lease(ctx context.Context, seat string, opts ...LeaseOption) (*Lease, error) {
	var cfg leaseConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.sub != "" {
		if err := validSub(cfg.sub); err != nil {
			return nil, err
		}
	}
	seat, err := prepareSeat(seat)
	if err != nil {
		return nil, err
	}
	// Until the lease is held, every request may be repeated: a member
	// that dies or a leader election only delays the lease, within the
	// caller's deadline or, without one, a TTL.
	if _, ok := ctx.Deadline(); !ok && !cfg.wait {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.ttl)
		defer cancel()
	}
	seatLock, err := lockSeat(seat)
	if errors.Is(err, errNoSeatLock) {
		p.logger.Warn("seat not locked: its file system does not lock files; two leases of it on this host are told apart by its record alone", "seat", seat)
		err = nil
	}
	if err != nil {
		return nil, err
	}
	held := false // from the lease on, its end unlocks the seat
	defer func() {
		if !held && seatLock != nil {
			_ = seatLock.Close()
		}
	}()
	if err := retry(ctx, func() error { _, err := p.recoverSeat(ctx, seat); return err }); err != nil {
		return nil, err
	}
	var l *Lease
	var got login
	for {
		l, err = p.startSession(ctx, seat)
		if err != nil {
			return nil, err
		}
		l.seatLock, held = seatLock, true
		got, err = p.acquire(ctx, l, cfg)
		if err == nil {
			l.stateMu.Lock() // the renewal loop may already report the lease lost
			l.sub = got.sub
			lost := l.lostErr != nil
			l.stateMu.Unlock()
			if lost {
				// Only the cluster ends it before its watch starts: the
				// lease key went with it, and the seat holds nothing yet.
				err = errSessionEnded
			}
		}
		if !errors.Is(err, errSessionEnded) {
			break
		}
		// The etcd lease ended while it waited (renewals through a paused
		// member, a revoke): it held no sub, so another is granted and
		// the wait goes on. The seat stays locked throughout.
		l.stopWatch()
		l.seatLock, held = nil, false
		l.endSession()
		p.logger.Warn("the etcd lease ended before a sub was leased: granting another", "seat", seat)
	}
	if err != nil {
		l.stopWatch()
		l.endSession()
		return nil, err
	}
	l.rev, l.stored, l.keyRev = got.revision, got.doc, got.keyRev
	l.record = seatRecord{Prefix: p.prefix, Sub: got.sub, Revision: got.revision, LeaseID: int64(l.id),
		Host: p.host, PID: os.Getpid(), Written: loginHash(got.doc)}
	if err := writeRecord(seat, &l.record); err != nil {
		l.stopWatch()
		l.abandon(ctx)
		return nil, err
	}
	if err := p.writeSeatLogin(seat, got.doc); err != nil {
		_ = p.clearSeatLogin(seat)
		_ = removeRecord(seat)
		l.stopWatch()
		l.abandon(ctx)
		return nil, err
	}
	l.wg.Add(1)
	go l.watch()
	p.logger.Info("leased", "sub", l.sub, "seat", seat, "lease", int64(l.id))
	return l, nil
}

// errSessionEnded is acquire's answer when the etcd lease it would bind a
// sub to ended before it could: nothing was leased, Lease grants another.
var errSessionEnded = errors.New("credslots-etcd: the etcd lease ended before a sub was leased")

// startSession grants an etcd lease, keeps it alive in a session and starts
// measuring its renewals.
func (p *Pool) startSession(ctx context.Context, seat string) (*Lease, error) {
	// The grant is sent after this instant: the cluster cannot end the
	// lease before it plus the TTL.
	var granted time.Time
	var grant *clientv3.LeaseGrantResponse
	err := retry(ctx, func() error {
		granted = time.Now()
		gctx, gcancel := p.opCtx(ctx)
		defer gcancel()
		var err error
		grant, err = p.cli.Grant(gctx, int64(p.ttlSeconds()))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("credslots-etcd: grant a lease: %w", err)
	}
	sess, err := concurrency.NewSession(p.cli, concurrency.WithTTL(p.ttlSeconds()),
		concurrency.WithLease(grant.ID), concurrency.WithContext(context.Background()))
	if err != nil {
		rctx, rcancel := p.opCtx(context.Background())
		_, _ = p.cli.Revoke(rctx, grant.ID)
		rcancel()
		return nil, fmt.Errorf("credslots-etcd: start session: %w", err)
	}
	l := &Lease{p: p, seat: seat, sess: sess, id: sess.Lease(), lastRenew: granted,
		done: make(chan struct{}), stop: make(chan struct{})}
	// Renewals are measured from now on, through a wait for a free sub.
	l.wg.Add(1)
	go l.renew()
	return l, nil
}

// abandon ends a lease whose seat was never filled.
func (l *Lease) abandon(ctx context.Context) {
	c, cancel := l.p.opCtx(ctx)
	defer cancel()
	_, _ = l.p.cli.Txn(c).If(clientv3.Compare(clientv3.LeaseValue(l.p.leaseKey(l.sub)), "=", int64(l.id))).
		Then(clientv3.OpDelete(l.p.leaseKey(l.sub))).Commit()
	l.endSession()
}

// endSession stops the keep-alives and revokes the lease, waiting no longer
// than one request may take (a lease that cannot be revoked expires); then
// the seat is another lease's to take.
func (l *Lease) endSession() {
	l.sess.Orphan()
	ctx, cancel := l.p.opCtx(context.Background())
	defer cancel()
	_, _ = l.p.cli.Revoke(ctx, l.id)
	if l.seatLock != nil {
		_ = l.seatLock.Close()
		l.seatLock = nil
	}
}

// acquire creates a free sub's lease key, bound to the session, in a
// transaction that succeeds only if the key is absent and the login is the
// one just read.
func (p *Pool) acquire(ctx context.Context, l *Lease, cfg leaseConfig) (login, error) {
	record, err := json.Marshal(LeaseInfo{Seat: l.seat, Host: p.host, PID: os.Getpid(), Since: time.Now().UTC()})
	if err != nil {
		return login{}, err
	}
	// A waiting lease whose context ends, however a round sees it (at its
	// start, or failing one of its requests), ends with the refusal it
	// waited on, as the wait's own end does; an answer the cluster gave is
	// returned as it is.
	var why []string
	ended := func(err error) error {
		if len(why) == 0 {
			return fmt.Errorf("credslots-etcd: waiting for a free sub: %w: %w", err, ErrNoFreeSub)
		}
		return fmt.Errorf("credslots-etcd: waiting for a free sub (%s): %w: %w", strings.Join(why, "; "), err, ErrNoFreeSub)
	}
	endedBy := func(err error) bool {
		return cfg.wait && ctx.Err() != nil && (transient(err) || errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled)
	}
	for {
		if err := ctx.Err(); err != nil && cfg.wait {
			return login{}, ended(err)
		}
		_ = poolHook("round")
		var ls map[string]login
		var rev int64
		var leases []LeaseInfo
		err := retry(ctx, func() error {
			var err error
			if ls, rev, err = p.logins(ctx); err != nil {
				return err
			}
			leases, err = p.Leases(ctx)
			return err
		})
		if err != nil {
			if endedBy(err) {
				return login{}, ended(ctx.Err())
			}
			return login{}, err
		}
		leased := map[string]bool{}
		for _, li := range leases {
			leased[li.Sub] = true
		}
		var cands []login
		cands, why = p.candidates(ls, leased, cfg.sub)
		for _, cand := range cands {
			if l.Err() != nil {
				// Lost while it waited: bound to it, the sub would be
				// handed over lost.
				return login{}, errSessionEnded
			}
			var resp *clientv3.TxnResponse
			err := retry(ctx, func() error {
				c, cancel := p.opCtx(ctx)
				defer cancel()
				var err error
				resp, err = p.cli.Txn(c).If(
					clientv3.Compare(clientv3.CreateRevision(p.leaseKey(cand.sub)), "=", 0),
					clientv3.Compare(clientv3.ModRevision(p.loginKey(cand.sub)), "=", cand.revision),
				).Then(clientv3.OpPut(p.leaseKey(cand.sub), string(record), clientv3.WithLease(l.sess.Lease()))).
					Else(clientv3.OpGet(p.leaseKey(cand.sub))).Commit()
				return err
			})
			if errors.Is(err, rpctypes.ErrLeaseNotFound) {
				return login{}, errSessionEnded
			}
			if err != nil {
				if endedBy(err) {
					return login{}, ended(ctx.Err())
				}
				return login{}, fmt.Errorf("credslots-etcd: lease %s: %w", cand.sub, err)
			}
			if resp.Succeeded {
				cand.keyRev = resp.Header.Revision
				_ = poolHook("acquired")
				return cand, nil
			}
			// A try that timed out may have created the key after all
			// (its compares held then): the key is this session's.
			if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 && kvs[0].Lease == int64(l.sess.Lease()) {
				cand.keyRev = kvs[0].ModRevision
				return cand, nil
			}
			why = append(why, cand.sub+": taken meanwhile")
		}
		if cfg.sub != "" {
			if _, ok := ls[cfg.sub]; !ok {
				return login{}, fmt.Errorf("credslots-etcd: %s: %w", cfg.sub, ErrUnknownSub)
			}
		}
		if !cfg.wait {
			if cfg.sub != "" && leased[cfg.sub] {
				return login{}, fmt.Errorf("credslots-etcd: %s is leased to another seat: %w", cfg.sub, ErrLeased)
			}
			return login{}, fmt.Errorf("credslots-etcd: %s: %w", strings.Join(why, "; "), ErrNoFreeSub)
		}
		_ = poolHook("waiting")
		if err := p.waitChange(ctx, rev); err != nil {
			return login{}, ended(err)
		}
	}
}

// retry runs f until it succeeds or ctx ends; then it returns f's last
// error. Only requests that are safe to repeat go through it.
func retry(ctx context.Context, f func() error) error {
	wait := 50 * time.Millisecond
	for {
		err := f()
		if err == nil || errors.Is(err, ErrBadKey) || errors.Is(err, ErrLeased) || ctx.Err() != nil || !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// transient reports whether err is the cluster being unreachable or busy,
// not an answer.
func transient(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, rpctypes.ErrNoLeader) ||
		errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail) ||
		errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost) ||
		status.Code(err) == codes.Unavailable || status.Code(err) == codes.DeadlineExceeded
}

// candidates lists the subs to try, best first, and why the others were
// passed over.
func (p *Pool) candidates(ls map[string]login, leased map[string]bool, only string) ([]login, []string) {
	var out []login
	var why []string
	subs := make([]string, 0, len(ls))
	for s := range ls {
		subs = append(subs, s)
	}
	sort.Strings(subs)
	for _, s := range subs {
		l := ls[s]
		if only != "" && s != only {
			continue
		}
		fresh, reason := p.freshness(l.info)
		switch {
		case leased[s]:
			why = append(why, s+": leased")
		case l.info.Problem != "" || l.info.Blank != "":
			why = append(why, s+": "+reason)
		case !fresh && only == "":
			why = append(why, s+": "+reason)
		default:
			out = append(out, l)
		}
	}
	if len(ls) == 0 {
		why = append(why, "the pool holds no login")
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].info.Expiry.After(out[j].info.Expiry) })
	return out, why
}

// waitChange blocks until a lease or login changes after revision rev.
func (p *Pool) waitChange(ctx context.Context, rev int64) error {
	// The watch's own deadline is the recheck: its opening, which blocks
	// until a member answers, cannot outlast it either.
	wctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), p.ttl)
	defer cancel()
	wch := openWatch(wctx, p.cli, p.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	select {
	case <-ctx.Done():
	case <-wch:
	}
	return ctx.Err()
}

// renew sends a keep-alive every sixth of the TTL and remembers when the
// last acknowledged one was sent: the cluster cannot end the lease before
// that time plus the TTL. Each keep-alive runs on its own, so one stuck on
// a stalled member never delays the next. The session keeps the lease
// alive too; this loop measures.
func (l *Lease) renew() {
	defer l.wg.Done()
	var probes sync.WaitGroup
	defer probes.Wait()
	period := max(l.p.ttl/6, 100*time.Millisecond)
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		probes.Add(1)
		go func() {
			defer probes.Done()
			l.probe()
		}()
	}
}

// probe sends one keep-alive.
func (l *Lease) probe() {
	sent := time.Now()
	ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(context.Background()), max(l.p.ttl/4, 200*time.Millisecond))
	defer cancel()
	_, err := l.p.cli.KeepAliveOnce(ctx, l.id)
	switch {
	case err == nil:
		l.stateMu.Lock()
		if sent.After(l.lastRenew) {
			l.lastRenew = sent
		}
		l.stateMu.Unlock()
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		l.lose("the cluster ended the lease", true)
	}
}

// watch reports the lease lost once no renewal was acknowledged within half
// the TTL or the lease key goes.
func (l *Lease) watch() {
	defer l.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	// A watch opens on its own: opening one blocks until a member answers,
	// and the lateness check below must go on meanwhile.
	var opening sync.WaitGroup
	defer opening.Wait()
	defer cancel()
	opened := make(chan clientv3.WatchChan, 1)
	pending := false // a watch is being opened
	open := func(opts ...clientv3.OpOption) {
		pending = true
		opening.Add(1)
		go func() {
			defer opening.Done()
			opened <- openWatch(ctx, l.p.cli, l.p.leaseKey(l.sub), opts...)
		}()
	}
	// From just after the key was made: a member that lags (one resumed
	// from a pause) would otherwise start the watch at its own older
	// revision and replay the key's earlier holders' events as this one's.
	var from []clientv3.OpOption
	if l.keyRev > 0 {
		from = append(from, clientv3.WithRev(l.keyRev+1))
	}
	open(from...)
	var keyEvents clientv3.WatchChan // nil while none is open
	sessionDone := l.sess.Done()
	check := time.NewTicker(min(max(l.p.ttl/50, 10*time.Millisecond), 100*time.Millisecond))
	defer check.Stop()
	var lastTry time.Time // the last read of the key after its watch ended
	for {
		select {
		case <-l.stop:
			return
		case keyEvents = <-opened:
			pending = false
		case <-sessionDone:
			// The session's own keep-alive stream gave up (a member
			// paused or gone, past the client's deadline): that says
			// nothing of the lease, which this lessee's keep-alives
			// measure and renew themselves.
			sessionDone = nil
			l.p.logger.Info("session stream ended", "sub", l.sub)
		case wr, ok := <-keyEvents:
			if !ok || wr.Canceled {
				// The watch ended: a compaction past where it had to
				// resume, or its stream gave up. The key itself says
				// whether it is still this lease's; the watch starts again
				// after what that read saw.
				keyEvents, lastTry = nil, time.Now()
				if l.rewatch(open) {
					l.lose("the lease key was removed", true)
					return
				}
				continue
			}
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypeDelete || ev.Kv.Lease != int64(l.id) {
					l.lose("the lease key was removed", true)
					return
				}
			}
		case <-check.C:
			l.stateMu.Lock()
			late := time.Since(l.lastRenew) > l.p.ttl/2
			l.stateMu.Unlock()
			if late {
				l.lose(fmt.Sprintf("not renewed within half the TTL (%s)", l.p.ttl/2), false)
				return
			}
			if keyEvents == nil && !pending && time.Since(lastTry) >= time.Second {
				lastTry = time.Now()
				if l.rewatch(open) {
					l.lose("the lease key was removed", true)
					return
				}
			}
		}
	}
}

// lose marks the lease lost, once. ended says the cluster has ended it
// already: the login may be leased to another seat from now on.
func (l *Lease) lose(reason string, ended bool) {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	if ended && l.endedAt.IsZero() {
		l.endedAt = time.Now()
	}
	if l.lostErr != nil {
		return
	}
	l.lostErr = fmt.Errorf("credslots-etcd: lease of %s: %s: %w", l.sub, reason, ErrLeaseLost)
	close(l.done)
	if l.sub == "" {
		return // no sub was leased yet: Lease grants another
	}
	l.p.logger.Warn("lease lost", "sub", l.sub, "reason", reason)
}

// Sync writes a newer login found in the seat (read under the CLI's locks)
// back into the pool, in a transaction fenced by the lease key's lease ID and
// the login's revision: it fails wrapping [ErrFenced], writing nothing, when
// the lease was lost or the stored login changed. A blank, unreadable or
// older login in the seat is left alone. On any failure the seat keeps the
// login, to be written back later (see [Lease.Release]).
func (l *Lease) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("credslots-etcd: lease of %s was released", l.sub)
	}
	return l.syncLocked()
}

// poolHook runs at the named points of a write-back or an import: after its
// check that no other sub holds the login ("checked") and after its
// transaction ("committed"); and, for a lease, where each round of its
// search starts ("round"), where a waiting one starts to wait
// ("waiting") and where its lease key was made ("acquired"), their errors
// ignored. Tests stop or race a lessee there.
var poolHook = func(point string) error { return nil }

// releaseTries bounds how often Release clears the seat and finds a login
// written since its last read, before it settles the seat instead.
const releaseTries = 3

// fenceRetries bounds how often a write-back or an import checks again
// because another sub's login was written between its check and its
// transaction.
const fenceRetries = 5

func (l *Lease) syncLocked() error {
	_, err := l.syncSeen()
	return err
}

// syncSeen is syncLocked, returning the seat's login it read (nil: none).
func (l *Lease) syncSeen() (seen []byte, err error) {
	_, seatLogin, err := l.p.readSeatLogin(l.seat)
	if err != nil {
		return nil, err
	}
	return seatLogin, l.writeBack(seatLogin)
}

// writeBack writes seatLogin, the seat's login just read, back into the
// pool (see Sync).
func (l *Lease) writeBack(seatLogin []byte) error {
	p := l.p
	if seatLogin == nil || bytes.Equal(seatLogin, l.stored) {
		return nil
	}
	ctx, cancel := p.opCtx(context.Background())
	defer cancel()
	hash := loginHash(seatLogin)
	if l.record.Pending != "" && l.record.Pending != hash {
		// The CLI refreshed again since a write-back whose answer was
		// lost: that one is settled first, or the seat's record would
		// forget the login it may have stored.
		if err := l.settlePending(ctx); err != nil {
			return err
		}
		if bytes.Equal(seatLogin, l.stored) {
			return nil
		}
	}
	if !p.worthKeeping(seatLogin) || !p.newer(seatLogin, l.stored) {
		return nil
	}
	sealed, err := p.seal.seal(p.loginKey(l.sub), seatLogin)
	if err != nil {
		return err
	}
	// The seat's record names the login before the transaction, so that a
	// write-back that lands unnoted (a lessee killed, an answer lost) is
	// known for this lease's own.
	if l.record.Pending != hash {
		rec := l.record
		rec.Pending = hash
		if err := writeRecord(l.seat, &rec); err != nil {
			return err
		}
		l.record = rec
	}
	var rev int64
	for attempt := 1; ; attempt++ {
		if attempt > fenceRetries {
			return fmt.Errorf("credslots-etcd: write back %s: %w", l.sub, errLoginsChanging)
		}
		// A login another sub's key holds (a file copied into the seat) is
		// that sub's, never this one's newer login: written back, two keys
		// would hand one refresh token to two seats. The transaction is
		// fenced by the logins read for this check, so that two seats
		// holding one login, on two hosts, cannot both write it back.
		other, seen, err := p.heldElsewhere(ctx, seatLogin, l.sub)
		if err != nil {
			return fmt.Errorf("credslots-etcd: write back %s: %w", l.sub, err)
		}
		if other != "" {
			return fmt.Errorf("credslots-etcd: write back %s: the seat holds the login sub %s holds, not a newer login of %s: %w", l.sub, other, l.sub, ErrDuplicate)
		}
		if err := poolHook("checked"); err != nil {
			return err
		}
		resp, err := p.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.LeaseValue(p.leaseKey(l.sub)), "=", int64(l.id)),
			clientv3.Compare(clientv3.ModRevision(p.loginKey(l.sub)), "=", l.rev),
			p.loginsUnchangedSince(seen),
		).Then(clientv3.OpPut(p.loginKey(l.sub), string(sealed))).Commit()
		if err != nil {
			return fmt.Errorf("credslots-etcd: write back %s: %w", l.sub, err)
		}
		if err := poolHook("committed"); err != nil {
			return err
		}
		if resp.Succeeded {
			rev = resp.Header.Revision
			break
		}
		stored, srev, lease, err := p.storedState(ctx, l.sub)
		if err != nil {
			return fmt.Errorf("credslots-etcd: write back %s: %w", l.sub, err)
		}
		held := lease == int64(l.id)
		if held && hashOf(stored) == hash {
			// An earlier write-back of this login landed with its answer
			// lost: the pool holds it already, still under this lease.
			rev = srev
			break
		}
		if held && srev == l.rev {
			continue // another sub's login was written meanwhile: check again
		}
		l.lose("a write-back was fenced out", true)
		return fmt.Errorf("credslots-etcd: write back %s: the lease was lost or the login changed: %w", l.sub, ErrFenced)
	}
	rec := l.record
	rec.Revision, rec.Written, rec.Pending = rev, hash, ""
	l.rev, l.stored = rev, seatLogin
	if err := writeRecord(l.seat, &rec); err != nil {
		return err
	}
	l.record = rec
	p.logger.Info("wrote back", "sub", l.sub, "revision", l.rev)
	return nil
}

// settlePending finds out whether the write-back the seat's record names as
// pending landed: the pool holds it (no other seat's write can have put
// that login there, see heldElsewhere), whether or not the lease lives on.
// Then the stored login and its revision are this lease's from now on, and
// a login the CLI refreshed from it since is written back from there (or,
// the lease ended, settled from there: see writeBackLate). Either way the
// record forgets it.
func (l *Lease) settlePending(ctx context.Context) error {
	stored, rev, _, err := l.p.storedState(ctx, l.sub)
	if err != nil {
		return fmt.Errorf("credslots-etcd: write back %s: %w", l.sub, err)
	}
	rec := l.record
	landed := stored != nil && loginHash(stored) == rec.Pending
	if landed {
		rec.Revision, rec.Written = rev, rec.Pending
	}
	rec.Pending = ""
	if err := writeRecord(l.seat, &rec); err != nil {
		return err
	}
	l.record = rec
	if landed {
		l.rev, l.stored = rev, stored
	}
	return nil
}

// newer reports whether the seat's login is not older than the stored one:
// its expiry is not earlier.
func (p *Pool) newer(seat, stored []byte) bool {
	a, b := credslots.InspectLogin(p.format, seat), credslots.InspectLogin(p.format, stored)
	return !b.HasExpiry || !a.Expiry.Before(b.Expiry)
}

// Release makes a final [Lease.Sync], takes the login out of the seat (for
// Claude Code the seat's other keys stay) and ends the lease; a login the
// CLI writes after that final read is written back before the seat is
// cleared, never cleared unread; a seat login that is not written back (it
// cannot be weighed, or is older) but holds a refresh token the pool's does
// not is kept as a sealed backup before the seat is cleared. When the lease
// was lost, what the seat holds is written back only if the stored login is
// unchanged, else kept as a sealed backup (reported in the error); when the
// cluster cannot be reached the login stays in the seat, with its record,
// and the error wraps [ErrPending]: the next lease of that seat settles it.
func (l *Lease) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	l.released = true
	var out error
	if rec, err := readRecord(l.seat); err != nil || rec == nil || rec.LeaseID != int64(l.id) {
		// The seat is another lease's now (a later lease settled it): it
		// holds nothing of this one.
		l.stopWatch()
		l.finish()
		return nil
	}
	seen, serr := l.syncSeen()
	l.stopWatch()
	cleared := false
	for tries := 1; serr == nil && l.Err() == nil; tries++ {
		if seen != nil && !bytes.Equal(seen, l.stored) {
			// Not written back (it cannot be weighed, or is not newer),
			// yet it may be the only copy of the newest refresh token.
			if err := l.p.keepIfOtherToken(context.Background(), l.sub, seen, l.stored); err != nil {
				out = fmt.Errorf("credslots-etcd: the login of %s stays in seat %s: %v: %w", l.sub, l.seat, err, ErrPending)
				break
			}
		}
		if cleared, out = l.p.clearSeatLoginIf(l.seat, seen); cleared || out != nil {
			break
		}
		if tries == releaseTries {
			serr = fmt.Errorf("credslots-etcd: the login in seat %s kept changing while it was released", l.seat)
			break
		}
		// The CLI wrote a login since that read: written back first.
		seen, serr = l.syncSeen()
	}
	switch {
	case out != nil:
	case cleared:
		out = removeRecord(l.seat)
	default:
		rec := l.record
		settled, err := l.p.settle(context.Background(), l.seat, &rec)
		switch {
		case err != nil:
			out = err
		case settled.Outcome == "backup" && errors.Is(serr, ErrDuplicate):
			out = fmt.Errorf("%w; kept as backup %s", serr, settled.Key)
		case settled.Outcome == "backup":
			out = fmt.Errorf("credslots-etcd: the lease of %s was lost and the stored login changed since: the seat's login is kept as backup %s: %w", l.sub, settled.Key, ErrFenced)
		}
	}
	l.finish()
	if out == nil {
		l.p.logger.Info("released", "sub", l.sub, "seat", l.seat)
	}
	return out
}

// finish marks the lease released and ends it in the cluster.
func (l *Lease) finish() {
	l.stateMu.Lock()
	if l.lostErr == nil {
		l.lostErr = fmt.Errorf("credslots-etcd: lease of %s was released", l.sub)
		close(l.done)
	}
	l.stateMu.Unlock()
	ctx, cancel := l.p.opCtx(context.Background())
	defer cancel()
	_, _ = l.p.cli.Txn(ctx).If(clientv3.Compare(clientv3.LeaseValue(l.p.leaseKey(l.sub)), "=", int64(l.id))).
		Then(clientv3.OpDelete(l.p.leaseKey(l.sub))).Commit()
	l.endSession()
}

// rewatch reads the lease key and, when it is still this lease's, opens a
// watch of it from just after that read; it reports whether the key is gone
// or another lease's. A read that fails opens nothing, for a later try (the
// renewals meanwhile still say whether the lease lives).
func (l *Lease) rewatch(open func(...clientv3.OpOption)) (lost bool) {
	// Short: the loop that calls it also tells a late renewal.
	c, cancel := context.WithTimeout(context.Background(), max(l.p.ttl/20, 200*time.Millisecond))
	resp, err := l.p.cli.Get(c, l.p.leaseKey(l.sub))
	cancel()
	if err != nil {
		return false
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].Lease != int64(l.id) {
		return true
	}
	open(clientv3.WithRev(resp.Header.Revision + 1))
	return false
}

// openWatch opens a watch; it blocks until a member acknowledges it or ctx
// ends (a closed channel then). Tests replace it to hold the opening.
var openWatch = func(ctx context.Context, cli *clientv3.Client, key string, opts ...clientv3.OpOption) clientv3.WatchChan {
	return cli.Watch(ctx, key, opts...)
}

func (l *Lease) stopWatch() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}
