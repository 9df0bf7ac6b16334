package etcd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gptme/credslots"
)

// recordName is the file in a seat that says which lease put its login
// there; it holds no token.
const recordName = ".credslots-etcd.json"

// seatLockName is the file in a seat a lease holds an exclusive flock on
// from before it looks at the seat until it is released: two leases of one
// seat on a host (two runs waiting for a free sub) cannot both fill it. It
// is never removed while a lease may hold it.
const seatLockName = ".credslots-etcd.lock"

// flockSeat takes the exclusive flock of a seat's lock file without
// waiting; a seam for tests.
var flockSeat = func(fd int) error { return syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB) }

// errNoSeatLock is lockSeat's answer where the file system has no locks
// (an NFS mount without them): the lease goes on without the seat's lock,
// with the record's checks alone, as before there was one.
var errNoSeatLock = errors.New("credslots-etcd: the seat's file system does not lock files")

// lockSeat takes the seat's lock without waiting; a seat another lease on
// this host holds is refused with ErrLeased. The file is open (close-on-exec)
// for as long as the lease holds it.
func lockSeat(seat string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(seat, seatLockName), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("credslots-etcd: seat %s: %w", seat, err)
	}
	for {
		err = flockSeat(int(f.Fd()))
		if err != syscall.EINTR {
			break
		}
	}
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, syscall.ENOLCK) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS):
		_ = f.Close()
		return nil, errNoSeatLock
	case errors.Is(err, syscall.EWOULDBLOCK):
		_ = f.Close()
		return nil, fmt.Errorf("credslots-etcd: seat %s is held by another lease on this host: %w", seat, ErrLeased)
	default:
		_ = f.Close()
		return nil, fmt.Errorf("credslots-etcd: lock seat %s: %w", seat, err)
	}
}

// seatLockTimeout bounds the wait for the seat's CLI locks.
const seatLockTimeout = 10 * time.Second

// seatRecord is what a seat remembers of the lease that filled it, so that a
// login left there (a crash, a lost lease, an unreachable cluster) is written
// back later only if the stored login is still the one it came from.
type seatRecord struct {
	Prefix   string `json:"prefix"`
	Sub      string `json:"sub"`
	Revision int64  `json:"revision"` // the login's ModRevision the seat's login derives from
	LeaseID  int64  `json:"lease_id"`
	Host     string `json:"host"`
	PID      int    `json:"pid"`
	Written  string `json:"written"` // sha256 hex of the login as last written or written back
	// Pending is the sha256 hex of a login being written back, noted before
	// the transaction: a lessee that stops after the transaction and before
	// it notes the new revision leaves the next settle able to tell its own
	// write-back from another seat's.
	Pending string `json:"pending,omitempty"`
}

func (p *Pool) seatFile(seat string) string { return filepath.Join(seat, p.format.DefaultLiveName()) }

func loginHash(doc []byte) string {
	h := sha256.Sum256(doc)
	return hex.EncodeToString(h[:])
}

// prepareSeat makes seat an absolute, real directory, created 0700 if
// missing; a path through a symlinked directory is refused.
func prepareSeat(seat string) (string, error) {
	if seat == "" {
		return "", errors.New("credslots-etcd: no seat")
	}
	abs, err := filepath.Abs(seat)
	if err != nil {
		return "", fmt.Errorf("credslots-etcd: seat %s: %w", seat, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", fmt.Errorf("credslots-etcd: create seat %s: %w", abs, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("credslots-etcd: seat %s: %w", abs, err)
	}
	if filepath.Clean(real) != abs {
		return "", fmt.Errorf("credslots-etcd: seat %s goes through a symlink (to %s); name the real directory", abs, real)
	}
	return abs, nil
}

func readRecord(seat string) (*seatRecord, error) {
	data, err := credslots.ReadCredentialFile(filepath.Join(seat, recordName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("credslots-etcd: read seat record: %w", err)
	}
	var r seatRecord
	if err := json.Unmarshal(data, &r); err != nil || r.Sub == "" {
		return nil, fmt.Errorf("credslots-etcd: seat record %s is unreadable", filepath.Join(seat, recordName))
	}
	return &r, nil
}

func writeRecord(seat string, r *seatRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return credslots.WriteCredentialFile(filepath.Join(seat, recordName), append(data, '\n'))
}

func removeRecord(seat string) error {
	err := os.Remove(filepath.Join(seat, recordName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// readSeatLogin reads the login in the seat under the CLI's locks: the seat
// document, and the login in it (nil when the seat holds none).
func (p *Pool) readSeatLogin(seat string) (doc, login []byte, err error) {
	release, err := credslots.LockCLI(p.format, seat, seatLockTimeout)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	doc, err = credslots.ReadCredentialFile(p.seatFile(seat))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("credslots-etcd: read seat %s: %w", seat, err)
	}
	return doc, p.loginIn(doc), nil
}

// loginIn is the login in a seat document, nil when it holds none that
// reads.
func (p *Pool) loginIn(doc []byte) []byte {
	login, err := credslots.LoginOf(p.format, doc)
	if err != nil {
		return nil
	}
	return login
}

// writeSeatLogin puts login into the seat, keeping (Claude Code) the
// seat's own keys.
func (p *Pool) writeSeatLogin(seat string, login []byte) error {
	release, err := credslots.LockCLI(p.format, seat, seatLockTimeout)
	if err != nil {
		return err
	}
	defer release()
	old, err := credslots.ReadCredentialFile(p.seatFile(seat))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("credslots-etcd: read seat %s: %w", seat, err)
	}
	next, err := credslots.WithLogin(p.format, old, login)
	if err != nil {
		return err
	}
	return credslots.WriteCredentialFile(p.seatFile(seat), next)
}

// clearSeatLogin takes the login out of the seat: for Claude Code the other
// keys stay, for the other formats the file goes.
func (p *Pool) clearSeatLogin(seat string) error {
	_, err := p.clearSeat(seat, nil, false)
	return err
}

// clearSeatLoginIf is clearSeatLogin made only while the seat still holds
// seen, the login an earlier read found there (nil: none), checked under the
// same hold of the CLI's locks: a login the CLI wrote since stays, and
// cleared is false.
func (p *Pool) clearSeatLoginIf(seat string, seen []byte) (cleared bool, err error) {
	return p.clearSeat(seat, seen, true)
}

func (p *Pool) clearSeat(seat string, seen []byte, check bool) (cleared bool, err error) {
	release, err := credslots.LockCLI(p.format, seat, seatLockTimeout)
	if err != nil {
		return false, err
	}
	defer release()
	old, err := credslots.ReadCredentialFile(p.seatFile(seat))
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("credslots-etcd: read seat %s: %w", seat, err)
	}
	if check && !bytes.Equal(p.loginIn(old), seen) {
		return false, nil
	}
	if rest, ok := credslots.WithoutLogin(p.format, old); ok {
		return true, credslots.WriteCredentialFile(p.seatFile(seat), rest)
	}
	if err := os.Remove(p.seatFile(seat)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// processAlive reports whether pid runs on this host.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Settled says what became of a login a seat still held.
type Settled struct {
	Sub string `json:"sub"`
	// Outcome is "written back" (the stored login had not changed),
	// "backup" (it had: the seat's login is kept under Key), or
	// "unchanged" (the seat held the login as stored).
	Outcome string `json:"outcome"`
	Key     string `json:"key,omitempty"`
}

// recoverSeat settles what an earlier lease left in the seat before a new
// login goes there. A seat used by a live lease is refused with ErrLeased; a
// seat holding a login no lease put there is refused too.
func (p *Pool) recoverSeat(ctx context.Context, seat string) (*Settled, error) {
	rec, err := readRecord(seat)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		_, login, err := p.readSeatLogin(seat)
		if err != nil {
			return nil, err
		}
		if login != nil {
			return nil, fmt.Errorf("credslots-etcd: seat %s holds a login no lease put there; move it away or import it", seat)
		}
		return nil, nil
	}
	if rec.Prefix != p.prefix {
		return nil, fmt.Errorf("credslots-etcd: seat %s holds a login of the pool %s", seat, rec.Prefix)
	}
	if rec.Host != p.host || rec.PID == os.Getpid() || processAlive(rec.PID) {
		// Its lessee may still run (here, or on another host sharing the
		// directory): the seat is that lease's while its key lives.
		c, cancel := p.opCtx(ctx)
		resp, err := p.cli.Get(c, p.leaseKey(rec.Sub))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("credslots-etcd: seat %s: %w", seat, err)
		}
		if len(resp.Kvs) > 0 && resp.Kvs[0].Lease == rec.LeaseID {
			return nil, fmt.Errorf("credslots-etcd: seat %s is the seat of a live lease of %s: %w", seat, rec.Sub, ErrLeased)
		}
	}
	return p.settle(ctx, seat, rec)
}

// settle writes the login the seat holds back into the pool if the stored
// login is still the one it came from (its revision unchanged, and the sub
// not leased to anyone else), else keeps it as a sealed backup; then it
// clears the seat. When the cluster cannot be reached the seat keeps it and
// the error wraps ErrPending.
func (p *Pool) settle(ctx context.Context, seat string, rec *seatRecord) (*Settled, error) {
	_, login, err := p.readSeatLogin(seat)
	if err != nil {
		// Unread (a CLI's lock still held, say), it may be the only copy
		// of the newest login: it stays, for a later lease of the seat.
		return nil, fmt.Errorf("credslots-etcd: the login of %s stays in seat %s: %w: %w", rec.Sub, seat, err, ErrPending)
	}
	out := &Settled{Sub: rec.Sub, Outcome: "unchanged"}
	if login != nil && loginHash(login) != rec.Written && p.worthKeeping(login) {
		out, err = p.writeBackLate(ctx, rec, login)
		if err != nil {
			return nil, fmt.Errorf("credslots-etcd: the login of %s stays in seat %s: %v: %w", rec.Sub, seat, err, ErrPending)
		}
	} else {
		if login != nil && loginHash(login) != rec.Written {
			c, cancel := p.opCtx(ctx)
			stored, _, _, err := p.storedState(c, rec.Sub)
			cancel()
			if err == nil {
				err = p.keepIfOtherToken(ctx, rec.Sub, login, stored)
			}
			if err != nil {
				return nil, fmt.Errorf("credslots-etcd: the login of %s stays in seat %s: %v: %w", rec.Sub, seat, err, ErrPending)
			}
		}
		if rec.LeaseID != 0 {
			p.endOldLease(ctx, rec)
		}
	}
	cleared, err := p.clearSeatLoginIf(seat, login)
	if err != nil {
		return out, err
	}
	if !cleared {
		// The CLI wrote since the read: the newer login stays. When the
		// pool now holds the one read, the record names it, so that the
		// next settle writes the newer one back over it (see
		// writeBackLate).
		if login != nil && out.Outcome != "backup" && rec.Pending != loginHash(login) {
			// Only over the record settled: another host sharing the
			// seat (its file system without locks) may have settled it
			// and leased it meanwhile, and its record is its lease's.
			if cur, err := readRecord(seat); err == nil && cur != nil && cur.LeaseID == rec.LeaseID && cur.Sub == rec.Sub {
				r := *rec
				r.Pending = loginHash(login)
				if err := writeRecord(seat, &r); err != nil {
					return out, err
				}
				*rec = r
			}
		}
		return out, fmt.Errorf("credslots-etcd: the login of %s stays in seat %s: it changed while it was settled: %w", rec.Sub, seat, ErrPending)
	}
	if err := removeRecord(seat); err != nil {
		return out, err
	}
	p.logger.Info("settled seat", "sub", rec.Sub, "seat", seat, "outcome", out.Outcome)
	return out, nil
}

// worthKeeping reports whether a login from a seat can serve: readable, with
// an expiry, not blanked by a failed refresh.
func (p *Pool) worthKeeping(login []byte) bool {
	info := credslots.InspectLogin(p.format, login)
	return info.Problem == "" && info.Blank == ""
}

// holdsOtherToken reports whether login holds a refresh token and stored
// (the pool's login, nil for none) does not hold the same one.
func (p *Pool) holdsOtherToken(login, stored []byte) bool {
	a := credslots.InspectLogin(p.format, login).Login
	return a != "" && (stored == nil || a != credslots.InspectLogin(p.format, stored).Login)
}

// keepIfOtherToken keeps a seat's login that is not written back (it
// cannot be weighed, or is not newer) as a sealed backup of sub when it
// holds a refresh token stored, the pool's login, does not: it may be the
// only copy of the newest.
func (p *Pool) keepIfOtherToken(ctx context.Context, sub string, login, stored []byte) error {
	if !p.holdsOtherToken(login, stored) {
		return nil
	}
	c, cancel := p.opCtx(ctx)
	defer cancel()
	_, err := p.keepAside(c, sub, login, "the seat's login is not written back and holds another refresh token")
	return err
}

// writeBackLate writes login back for rec's sub when the stored login's
// revision is still rec.Revision and the sub is leased to nobody but rec's
// own (ended) lease; otherwise it keeps login as a backup. When other subs'
// logins kept changing between its check and its write, it writes nothing
// and says so (the seat keeps the login, pending).
func (p *Pool) writeBackLate(ctx context.Context, rec *seatRecord, login []byte) (*Settled, error) {
	c, cancel := p.opCtx(ctx)
	defer cancel()
	sealed, err := p.seal.seal(p.loginKey(rec.Sub), login)
	if err != nil {
		return nil, err
	}
	reason := "the stored login changed since this seat got it"
	adopted := false
	for attempt := 1; ; attempt++ {
		if attempt > fenceRetries {
			return nil, errLoginsChanging
		}
		other, seen, err := p.heldElsewhere(c, login, rec.Sub)
		if err != nil {
			return nil, err
		}
		if err := poolHook("checked"); err != nil {
			return nil, err
		}
		if other != "" {
			// Another sub's login (a copy): never written into rec's sub.
			reason = "the seat holds the login sub " + other + " holds"
			break
		}
		written, err := p.putIfUnchanged(c, rec, sealed, seen)
		if err != nil {
			return nil, err
		}
		if written {
			return &Settled{Sub: rec.Sub, Outcome: "written back"}, nil
		}
		stored, rev, lease, err := p.storedState(c, rec.Sub)
		if err != nil {
			return nil, err
		}
		hash := hashOf(stored)
		if hash == loginHash(login) {
			// The lessee's own write-back landed and it stopped before
			// noting so: the pool holds the seat's login already.
			if rec.LeaseID != 0 {
				p.endOldLease(ctx, rec)
			}
			return &Settled{Sub: rec.Sub, Outcome: "unchanged"}, nil
		}
		if !adopted && rec.Pending != "" && hash == rec.Pending {
			// The lessee's write-back of rec.Pending landed unnoted, and
			// its CLI refreshed again since: the seat's login derives from
			// the stored one, at the stored revision.
			rec.Revision, adopted = rev, true
			continue
		}
		if rev != rec.Revision || (lease != 0 && lease != rec.LeaseID) {
			break
		}
		// Only another sub's login was written since the check: again.
	}
	// The fence: the login changed (or is live elsewhere) since this seat
	// got it, or it is another sub's. Never overwrite it; keep this one
	// aside. The ended lease is ended now (its lessee is gone), not at its
	// TTL.
	if rec.LeaseID != 0 {
		p.endOldLease(ctx, rec)
	}
	return p.keepAside(c, rec.Sub, login, reason)
}

// putIfUnchanged writes sealed as rec's sub's login when the stored login's
// revision is still rec.Revision, no login was written after seen, and the
// sub is leased by rec's lease (that lease then ends) or by nobody.
func (p *Pool) putIfUnchanged(ctx context.Context, rec *seatRecord, sealed []byte, seen int64) (bool, error) {
	unchanged := clientv3.Compare(clientv3.ModRevision(p.loginKey(rec.Sub)), "=", rec.Revision)
	put := clientv3.OpPut(p.loginKey(rec.Sub), string(sealed))
	if rec.LeaseID != 0 {
		resp, err := p.cli.Txn(ctx).If(unchanged, p.loginsUnchangedSince(seen),
			clientv3.Compare(clientv3.LeaseValue(p.leaseKey(rec.Sub)), "=", rec.LeaseID),
		).Then(put, clientv3.OpDelete(p.leaseKey(rec.Sub))).Commit()
		if err != nil {
			return false, err
		}
		if resp.Succeeded {
			p.endOldLease(ctx, rec)
			return true, nil
		}
	}
	resp, err := p.cli.Txn(ctx).If(unchanged, p.loginsUnchangedSince(seen),
		clientv3.Compare(clientv3.CreateRevision(p.leaseKey(rec.Sub)), "=", 0),
	).Then(put).Commit()
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// storedState reads, in one transaction, sub's stored login (its plain
// text, nil when there is none, and its revision) and the etcd lease its
// lease key is bound to (0 when it is not leased).
func (p *Pool) storedState(ctx context.Context, sub string) (plain []byte, rev, lease int64, err error) {
	resp, err := p.cli.Txn(ctx).Then(clientv3.OpGet(p.loginKey(sub)), clientv3.OpGet(p.leaseKey(sub))).Commit()
	if err != nil {
		return nil, 0, 0, err
	}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		lease = kvs[0].Lease
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, 0, lease, nil
	}
	plain, err = p.seal.open(string(kvs[0].Key), kvs[0].Value)
	if err != nil {
		return nil, 0, 0, err
	}
	return plain, kvs[0].ModRevision, lease, nil
}

// hashOf is loginHash of a stored login, "" for none.
func hashOf(plain []byte) string {
	if plain == nil {
		return ""
	}
	return loginHash(plain)
}

// keepAside keeps a seat's login that is not written back as a sealed
// backup of sub.
func (p *Pool) keepAside(ctx context.Context, sub string, login []byte, reason string) (*Settled, error) {
	key := p.backupKey(sub)
	bsealed, err := p.seal.seal(key, login)
	if err != nil {
		return nil, err
	}
	if _, err := p.cli.Put(ctx, key, string(bsealed)); err != nil {
		return nil, err
	}
	p.logger.Warn("kept as backup", "sub", sub, "key", key, "reason", reason)
	return &Settled{Sub: sub, Outcome: "backup", Key: key}, nil
}

// endOldLease revokes the ended lease rec names, so its sub is free now
// rather than at its TTL; a lease already gone is fine.
func (p *Pool) endOldLease(ctx context.Context, rec *seatRecord) {
	c, cancel := p.opCtx(ctx)
	defer cancel()
	_, _ = p.cli.Revoke(c, clientv3.LeaseID(rec.LeaseID))
}
