package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gptme/credslots"
)

// login is one sub's stored login, opened.
type login struct {
	sub      string
	doc      []byte // the login document (for Claude Code: {"claudeAiOauth": ...})
	revision int64  // the login key's ModRevision
	// keyRev is, on a login a lease acquired, the revision at which its
	// lease key was made: the lease watches the key's events after it.
	keyRev int64
	info   credslots.LoginInfo
}

// LeaseInfo describes one lease: where a sub's login went.
type LeaseInfo struct {
	Sub     string    `json:"sub"`
	Seat    string    `json:"seat"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Since   time.Time `json:"since"`
	LeaseID int64     `json:"lease_id"`
}

// SubStatus is one sub's state in the pool. It holds no token.
type SubStatus struct {
	Sub      string     `json:"sub"`
	Revision int64      `json:"revision"`
	Expiry   *time.Time `json:"expiry,omitempty"`
	Fresh    bool       `json:"fresh"`
	Reason   string     `json:"reason"`
	Lease    *LeaseInfo `json:"lease,omitempty"`
	Backups  int        `json:"backups"`
}

// logins opens every stored login; an undecryptable one is an error.
func (p *Pool) logins(ctx context.Context) (map[string]login, int64, error) {
	c, cancel := p.opCtx(ctx)
	defer cancel()
	resp, err := p.cli.Get(c, p.prefix+"logins/", clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("credslots-etcd: list logins: %w", err)
	}
	out := make(map[string]login, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		sub := strings.TrimPrefix(string(kv.Key), p.prefix+"logins/")
		doc, err := p.seal.open(string(kv.Key), kv.Value)
		if err != nil {
			return nil, 0, err
		}
		out[sub] = login{sub: sub, doc: doc, revision: kv.ModRevision, info: credslots.InspectLogin(p.format, doc)}
	}
	return out, resp.Header.Revision, nil
}

// Leases lists the pool's leases, by sub.
func (p *Pool) Leases(ctx context.Context) ([]LeaseInfo, error) {
	c, cancel := p.opCtx(ctx)
	defer cancel()
	resp, err := p.cli.Get(c, p.prefix+"leases/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("credslots-etcd: list leases: %w", err)
	}
	out := make([]LeaseInfo, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var li LeaseInfo
		_ = json.Unmarshal(kv.Value, &li) // a foreign record still names its sub
		li.Sub = strings.TrimPrefix(string(kv.Key), p.prefix+"leases/")
		li.LeaseID = kv.Lease
		out = append(out, li)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Sub < out[j].Sub })
	return out, nil
}

// Status reports each sub's login (its expiry and freshness, never a token),
// its lease and how many backups it has.
func (p *Pool) Status(ctx context.Context) ([]SubStatus, error) {
	ls, _, err := p.logins(ctx)
	if err != nil {
		return nil, err
	}
	leases, err := p.Leases(ctx)
	if err != nil {
		return nil, err
	}
	c, cancel := p.opCtx(ctx)
	defer cancel()
	bresp, err := p.cli.Get(c, p.prefix+"backups/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("credslots-etcd: list backups: %w", err)
	}
	backups := map[string]int{}
	for _, kv := range bresp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), p.prefix+"backups/")
		if i := strings.IndexByte(rest, '/'); i > 0 {
			backups[rest[:i]]++
		}
	}
	byLease := map[string]LeaseInfo{}
	for _, l := range leases {
		byLease[l.Sub] = l
	}
	subs := make([]string, 0, len(ls))
	for s := range ls {
		subs = append(subs, s)
	}
	sort.Strings(subs)
	out := make([]SubStatus, 0, len(subs))
	for _, s := range subs {
		l := ls[s]
		st := SubStatus{Sub: s, Revision: l.revision, Backups: backups[s]}
		st.Fresh, st.Reason = p.freshness(l.info)
		if l.info.HasExpiry {
			e := l.info.Expiry
			st.Expiry = &e
		}
		if li, ok := byLease[s]; ok {
			li := li
			st.Lease = &li
		}
		out = append(out, st)
	}
	return out, nil
}

// freshness says whether a login is usable for longer than the grace.
func (p *Pool) freshness(info credslots.LoginInfo) (bool, string) {
	now := p.now()
	switch {
	case info.Problem != "":
		return false, info.Problem
	case info.Blank != "":
		return false, "blank " + info.Blank
	case !info.Expiry.After(now.Add(p.grace)):
		if !info.Expiry.After(now) {
			return false, "expired at " + info.Expiry.UTC().Format(time.RFC3339)
		}
		return false, "expires within grace (at " + info.Expiry.UTC().Format(time.RFC3339) + ")"
	}
	return true, "valid until " + info.Expiry.UTC().Format(time.RFC3339)
}

// holderOf returns the sub other than sub whose stored login is the login
// info describes: the same refresh token; "" when none.
func holderOf(ls map[string]login, info credslots.LoginInfo, sub string) string {
	if info.Login == "" {
		return ""
	}
	for other, o := range ls {
		if other != sub && o.info.Login == info.Login {
			return other
		}
	}
	return ""
}

// heldElsewhere returns the sub other than sub whose stored login is
// login ("" when none) and the revision the logins were read at, for
// [Pool.loginsUnchangedSince].
func (p *Pool) heldElsewhere(ctx context.Context, login []byte, sub string) (string, int64, error) {
	ls, seen, err := p.logins(ctx)
	if err != nil {
		return "", 0, err
	}
	return holderOf(ls, credslots.InspectLogin(p.format, login), sub), seen, nil
}

// loginsUnchangedSince holds when no stored login was written after
// revision seen: the fence of a write that checked, at seen, that no other
// sub holds its login.
func (p *Pool) loginsUnchangedSince(seen int64) clientv3.Cmp {
	return clientv3.Compare(clientv3.ModRevision(p.prefix+"logins/"), "<", seen+1).WithPrefix()
}

// Import stores doc (a credential file as the CLI writes it) as sub's login.
// For Claude Code only claudeAiOauth is stored. It refuses a document that is
// not a login, a login another sub holds (the same refresh token, or the
// same identity: for Codex CLI its account, since a sub is one account;
// wrapping [ErrDuplicate]), a login older (by expiry) than the one stored for sub
// (wrapping [ErrOlder]), and a sub leased right now (wrapping [ErrLeased]).
func (p *Pool) Import(ctx context.Context, sub string, doc []byte) error {
	if err := validSub(sub); err != nil {
		return err
	}
	l, err := credslots.LoginOf(p.format, doc)
	if err != nil {
		return fmt.Errorf("credslots-etcd: import %s: %w", sub, err)
	}
	info := credslots.InspectLogin(p.format, l)
	if info.Problem != "" || info.Blank != "" {
		return fmt.Errorf("credslots-etcd: import %s: not a usable login: %s%s", sub, info.Problem, blankWord(info.Blank))
	}
	sealed, err := p.seal.seal(p.loginKey(sub), l)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		ls, seen, err := p.logins(ctx)
		if err != nil {
			return err
		}
		if err := p.importable(ls, sub, info); err != nil {
			return err
		}
		if err := poolHook("checked"); err != nil {
			return err
		}
		// The login must not have changed since it was read, and the sub
		// must not be leased: a lessee's write-back would be fenced out
		// anyway, but its seat would then hold a login the pool no longer
		// has. No other login may have been written since the check
		// either (it may be this one, imported as another sub).
		var rev int64
		if o, ok := ls[sub]; ok {
			rev = o.revision
		}
		c, cancel := p.opCtx(ctx)
		resp, err := p.cli.Txn(c).If(
			clientv3.Compare(clientv3.CreateRevision(p.leaseKey(sub)), "=", 0),
			clientv3.Compare(clientv3.ModRevision(p.loginKey(sub)), "=", rev),
			p.loginsUnchangedSince(seen),
		).Then(clientv3.OpPut(p.loginKey(sub), string(sealed))).Else(
			clientv3.OpGet(p.leaseKey(sub), clientv3.WithCountOnly()),
			clientv3.OpGet(p.loginKey(sub), clientv3.WithKeysOnly()),
		).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("credslots-etcd: import %s: %w", sub, err)
		}
		if resp.Succeeded {
			p.logger.Info("imported", "sub", sub, "revision", resp.Header.Revision)
			return nil
		}
		leased := resp.Responses[0].GetResponseRange().Count > 0
		var now int64
		if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
			now = kvs[0].ModRevision
		}
		if leased || now != rev {
			return fmt.Errorf("credslots-etcd: import %s: the sub is leased or changed meanwhile: %w", sub, ErrLeased)
		}
		if attempt == fenceRetries {
			return fmt.Errorf("credslots-etcd: import %s: %w", sub, errLoginsChanging)
		}
		// Another sub's login was written meanwhile: check again.
	}
}

// importable refuses, as [Pool.Import] does, a login info describes for sub
// when the logins ls hold it, or its account, under another sub, or hold a
// newer login of sub.
func (p *Pool) importable(ls map[string]login, sub string, info credslots.LoginInfo) error {
	if other := holderOf(ls, info, sub); other != "" {
		return fmt.Errorf("credslots-etcd: import %s: sub %s holds this login already: %w", sub, other, ErrDuplicate)
	}
	if info.Fingerprint != "" {
		for other, o := range ls {
			if other != sub && o.info.Fingerprint == info.Fingerprint {
				return fmt.Errorf("credslots-etcd: import %s: sub %s holds a login of this account already: %w", sub, other, ErrDuplicate)
			}
		}
	}
	if o, ok := ls[sub]; ok && o.info.HasExpiry && info.Expiry.Before(o.info.Expiry) {
		return fmt.Errorf("credslots-etcd: import %s: the stored login is newer (expires %s) than this one (expires %s): %w",
			sub, o.info.Expiry.UTC().Format(time.RFC3339), info.Expiry.UTC().Format(time.RFC3339), ErrOlder)
	}
	return nil
}

func blankWord(b string) string {
	if b == "" {
		return ""
	}
	return "blank " + b
}

// Export returns sub's stored login document. It refuses, wrapping
// [ErrLeased], a login that is leased: its seat may hold a newer one.
func (p *Pool) Export(ctx context.Context, sub string) ([]byte, error) {
	if err := validSub(sub); err != nil {
		return nil, err
	}
	c, cancel := p.opCtx(ctx)
	defer cancel()
	resp, err := p.cli.Txn(c).If(
		clientv3.Compare(clientv3.CreateRevision(p.leaseKey(sub)), "=", 0),
	).Then(clientv3.OpGet(p.loginKey(sub))).Commit()
	if err != nil {
		return nil, fmt.Errorf("credslots-etcd: export %s: %w", sub, err)
	}
	if !resp.Succeeded {
		return nil, fmt.Errorf("credslots-etcd: export %s: %w", sub, ErrLeased)
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, fmt.Errorf("credslots-etcd: export %s: %w", sub, ErrUnknownSub)
	}
	return p.seal.open(string(kvs[0].Key), kvs[0].Value)
}

// Backup is one sealed backup: a seat's login that the fence kept from
// being written back (see [Lease.Release]). It holds no token.
type Backup struct {
	// Name is the backup's key under the prefix's backups/, SUB/NANOS:
	// what [Pool.ExportBackup] takes.
	Name   string     `json:"name"`
	Sub    string     `json:"sub"`
	Time   time.Time  `json:"time"` // when it was kept
	Expiry *time.Time `json:"expiry,omitempty"`
	Fresh  bool       `json:"fresh"`
	// Reason says how fresh it is, or why it cannot be read (a value that
	// does not open with the pool's key).
	Reason string `json:"reason"`
}

// Backups lists the pool's sealed backups of sub (of every sub when sub is
// ""), newest first. A backup that does not open with the pool's key is
// listed with why, not fatal: the others stay readable.
func (p *Pool) Backups(ctx context.Context, sub string) ([]Backup, error) {
	from := p.prefix + "backups/"
	if sub != "" {
		if err := validSub(sub); err != nil {
			return nil, err
		}
		from += sub + "/"
	}
	c, cancel := p.opCtx(ctx)
	defer cancel()
	resp, err := p.cli.Get(c, from, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("credslots-etcd: list backups: %w", err)
	}
	out := make([]Backup, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), p.prefix+"backups/")
		bsub, at, ok := parseBackupName(name)
		if !ok {
			continue // not a key this package writes
		}
		b := Backup{Name: name, Sub: bsub, Time: at}
		doc, err := p.seal.open(string(kv.Key), kv.Value)
		if err != nil {
			b.Reason = err.Error()
		} else {
			info := credslots.InspectLogin(p.format, doc)
			b.Fresh, b.Reason = p.freshness(info)
			if info.HasExpiry {
				e := info.Expiry
				b.Expiry = &e
			}
		}
		out = append(out, b)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// ExportBackup returns the login document of the backup named name (a
// [Backup]'s Name), to be written into a seat or a slot by hand, or
// imported again with [Pool.Import]. It changes nothing: the backup stays.
// A name that is not a backup's returns an error wrapping [ErrNoBackup].
func (p *Pool) ExportBackup(ctx context.Context, name string) ([]byte, error) {
	if _, _, ok := parseBackupName(name); !ok {
		return nil, fmt.Errorf("credslots-etcd: %q is not a backup's name (SUB/NANOS, as backups lists them): %w", name, ErrNoBackup)
	}
	key := p.prefix + "backups/" + name
	c, cancel := p.opCtx(ctx)
	defer cancel()
	resp, err := p.cli.Get(c, key)
	if err != nil {
		return nil, fmt.Errorf("credslots-etcd: export backup %s: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("credslots-etcd: no backup %s: %w", name, ErrNoBackup)
	}
	return p.seal.open(key, resp.Kvs[0].Value)
}

// parseBackupName splits a backup's name, SUB/NANOS as [Pool.backupKey]
// makes it, into its sub and time.
func parseBackupName(name string) (string, time.Time, bool) {
	i := strings.LastIndexByte(name, '/')
	if i <= 0 || validSub(name[:i]) != nil || len(name)-i-1 != 20 {
		return "", time.Time{}, false
	}
	ns, err := strconv.ParseInt(name[i+1:], 10, 64)
	if err != nil || ns < 0 {
		return "", time.Time{}, false
	}
	return name[:i], time.Unix(0, ns).UTC(), true
}
