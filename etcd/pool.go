package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gptme/credslots"
)

// DefaultPrefix is the key prefix a pool lives under.
const DefaultPrefix = "/credslots/"

// DefaultTTL is a lease session's TTL.
const DefaultTTL = 15 * time.Second

// Pool is the set of logins under one prefix of an etcd cluster. Build it
// with [Open]; the zero Pool is not usable. A Pool is safe for concurrent
// use; it does not own the etcd client.
type Pool struct {
	cli    *clientv3.Client
	seal   *sealer
	prefix string
	format credslots.Format
	ttl    time.Duration
	host   string
	grace  time.Duration
	logger *slog.Logger
	now    func() time.Time
}

type config struct {
	key    []byte
	prefix string
	format credslots.Format
	ttl    time.Duration
	host   string
	grace  time.Duration
	logger *slog.Logger
	now    func() time.Time
}

// Option configures [Open].
type Option func(*config)

// WithKey sets the 32-byte AES-256 key logins are sealed with (required).
func WithKey(key []byte) Option { return func(c *config) { c.key = append([]byte(nil), key...) } }

// WithPrefix sets the key prefix (default [DefaultPrefix]); a missing
// trailing slash is added.
func WithPrefix(p string) Option { return func(c *config) { c.prefix = p } }

// WithFormat sets the CLI whose credential files the pool holds (default
// [credslots.ClaudeCode]).
func WithFormat(f credslots.Format) Option { return func(c *config) { c.format = f } }

// WithTTL sets the lease session's TTL (default [DefaultTTL]), rounded up
// to whole seconds as etcd grants them.
func WithTTL(d time.Duration) Option { return func(c *config) { c.ttl = d } }

// WithHost sets the host name lease records carry (default os.Hostname).
func WithHost(h string) Option { return func(c *config) { c.host = h } }

// WithGrace sets how long a login must stay valid to count as fresh when a
// sub is picked (default credslots.DefaultGrace).
func WithGrace(d time.Duration) Option { return func(c *config) { c.grace = d } }

// WithLogger sets the logger (default: discard). Messages are constant; sub
// and reason are attributes; no token is ever logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithClock sets the wall clock used for freshness (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// Open returns the pool under the configured prefix of the cluster cli
// talks to. It fails, wrapping [ErrBadKey], without a 32-byte key.
func Open(cli *clientv3.Client, opts ...Option) (*Pool, error) {
	host, _ := os.Hostname()
	c := config{prefix: DefaultPrefix, format: credslots.ClaudeCode, ttl: DefaultTTL, host: host,
		grace: credslots.DefaultGrace, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	if cli == nil {
		return nil, errors.New("credslots-etcd: no etcd client")
	}
	if c.key == nil {
		return nil, fmt.Errorf("credslots-etcd: no key (a 32-byte key file is required): %w", ErrBadKey)
	}
	s, err := newSealer(c.key)
	if err != nil {
		return nil, err
	}
	if c.prefix == "" {
		return nil, errors.New("credslots-etcd: empty prefix")
	}
	if !strings.HasSuffix(c.prefix, "/") {
		c.prefix += "/"
	}
	if c.ttl <= 0 {
		return nil, fmt.Errorf("credslots-etcd: TTL must be positive (got %s)", c.ttl)
	}
	if c.format == nil {
		return nil, errors.New("credslots-etcd: no format")
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return &Pool{cli: cli, seal: s, prefix: c.prefix, format: c.format, ttl: c.ttl.Round(time.Second),
		host: c.host, grace: c.grace, logger: c.logger, now: c.now}, nil
}

// Format is the CLI format the pool holds.
func (p *Pool) Format() credslots.Format { return p.format }

// Prefix is the pool's key prefix.
func (p *Pool) Prefix() string { return p.prefix }

func (p *Pool) loginKey(sub string) string { return p.prefix + "logins/" + sub }
func (p *Pool) leaseKey(sub string) string { return p.prefix + "leases/" + sub }
func (p *Pool) backupKey(sub string) string {
	return fmt.Sprintf("%sbackups/%s/%020d", p.prefix, sub, time.Now().UnixNano())
}

// validSub refuses names that would leave their key's place.
func validSub(sub string) error {
	if sub == "" || sub == "." || sub == ".." || strings.ContainsAny(sub, "/\x00") || len(sub) > 128 {
		return fmt.Errorf("credslots-etcd: invalid sub name %q", sub)
	}
	return nil
}

// ttlSeconds is the TTL as etcd grants it.
func (p *Pool) ttlSeconds() int {
	s := int(p.ttl / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// opCtx bounds one request to the cluster.
func (p *Pool) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, max(p.ttl/3, 2*time.Second))
}
