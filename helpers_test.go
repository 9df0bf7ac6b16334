package credslots

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/atomicfile"
	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/require"
)

// testNow is the fixed clock every test manager uses.
var testNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return testNow }

// claudeDoc builds a Claude Code credential document. An empty refresh token
// leaves the field out.
func claudeDoc(expiry time.Time, refreshToken string) []byte {
	oauth := map[string]any{
		"accessToken": "sk-ant-oat01-access-" + refreshToken,
		"expiresAt":   expiry.UnixMilli(),
		"scopes":      []string{"user:inference"},
	}
	if refreshToken != "" {
		oauth["refreshToken"] = refreshToken
	}
	b, err := json.Marshal(map[string]any{"claudeAiOauth": oauth})
	if err != nil {
		panic(err)
	}
	return b
}

// writeFile writes data at path with mode 0600, creating parent directories.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// writeSlot writes a Claude Code credential with the given expiry and refresh token.
func writeSlot(t testing.TB, path string, expiry time.Time, refreshToken string) []byte {
	t.Helper()
	doc := claudeDoc(expiry, refreshToken)
	writeFile(t, path, doc)
	return doc
}

// fresh and stale are expiries relative to testNow.
var (
	fresh = testNow.Add(8 * time.Hour)
	stale = testNow.Add(-90 * time.Minute)
)

// recorder collects on-switch calls.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) hook(sub, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, sub+"|"+reason)
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fixture is a creds dir with a manager over it.
type fixture struct {
	dir  string
	m    *Manager
	hook *recorder
	logs *syncBuffer
}

// newFixture builds a manager over a fresh temp dir for subs bob, alice, erik.
func newFixture(t testing.TB, opts ...Option) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), hook: &recorder{}, logs: &syncBuffer{}}
	base := []Option{
		WithCredsDir(f.dir),
		WithSubscriptions("bob", "alice", "erik"),
		WithClock(fixedClock),
		WithOnSwitch(f.hook.hook),
		WithLogger(slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}
	m, err := New(append(base, opts...)...)
	require.NoError(t, err)
	f.m = m
	return f
}

func (f *fixture) slot(sub string) string { return f.m.SlotPath(sub) }

// link points the live path at sub's slot the way an operator would.
func (f *fixture) link(t testing.TB, sub string) {
	t.Helper()
	_ = os.Remove(f.m.LivePath())
	require.NoError(t, os.Symlink(f.m.symlinkTarget(sub), f.m.LivePath()))
}

// refresh simulates the CLI's token refresh: a new regular file renamed over
// the live path.
func (f *fixture) refresh(t testing.TB, doc []byte) {
	t.Helper()
	tmp := f.m.LivePath() + ".cli-tmp"
	require.NoError(t, os.WriteFile(tmp, doc, 0o600))
	require.NoError(t, os.Rename(tmp, f.m.LivePath()))
}

// readlink returns the live symlink's target, or "" when it is not a symlink.
func (f *fixture) readlink(t testing.TB) string {
	t.Helper()
	target, err := os.Readlink(f.m.LivePath())
	if err != nil {
		return ""
	}
	return target
}

// tempLeftovers lists every temporary name under dir.
func tempLeftovers(t testing.TB, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), ".tmp") {
			found = append(found, path)
		}
		return nil
	})
	require.NoError(t, err)
	return found
}

// errInjected is the fault faultFS returns.
var errInjected = errors.New("injected fault")

// faultFS wraps the real file system and fails exactly one operation: the
// failAt-th (1-based) counted one, optionally only among operations named in
// ops. Removals of the package's own temporaries are not counted: they are
// the cleanup that follows a fault, and their own failure is covered by the
// sweep tests.
type faultFS struct {
	inner  disk.FS
	mu     sync.Mutex
	n      int
	failAt int
	ops    map[string]bool // nil: every operation counts
	log    []string        // operations seen, in order
	// before, when set, runs before every operation: a concurrent writer
	// acting at an exact step. It runs outside mu, and from several
	// goroutines at once when reads are shared (see readSlotsAndSidecars).
	before func(op, name string)
	// noExchange makes the platform look like one without an atomic
	// exchange, to exercise the portable fallback.
	noExchange bool
}

func (f *faultFS) hit(op, name string) error {
	if f.before != nil {
		f.before(op, name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ops != nil && !f.ops[op] {
		return nil
	}
	f.n++
	f.log = append(f.log, fmt.Sprintf("%s %s", op, filepath.Base(name)))
	if f.n == f.failAt {
		return &fs.PathError{Op: op, Path: name, Err: errInjected}
	}
	return nil
}

func (f *faultFS) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *faultFS) ReadFile(name string) ([]byte, error) {
	if err := f.hit("read", name); err != nil {
		return nil, err
	}
	return f.inner.ReadFile(name)
}

func (f *faultFS) ReadFileTail(name string, limit int64) ([]byte, error) {
	if err := f.hit("read", name); err != nil {
		return nil, err
	}
	return f.inner.ReadFileTail(name, limit)
}

func (f *faultFS) ReadFileMode(name string) ([]byte, fs.FileMode, error) {
	if err := f.hit("read", name); err != nil {
		return nil, 0, err
	}
	return f.inner.ReadFileMode(name)
}

func (f *faultFS) ReadFileInto(name string, buf []byte) ([]byte, error) {
	if err := f.hit("read", name); err != nil {
		return nil, err
	}
	return f.inner.ReadFileInto(name, buf)
}

// StatMode counts as a "stat", as it is one.
func (f *faultFS) StatMode(name string) (fs.FileMode, error) {
	if err := f.hit("stat", name); err != nil {
		return 0, err
	}
	return f.inner.StatMode(name)
}

// ReadlinkInto counts as a "readlink", as it is one.
func (f *faultFS) ReadlinkInto(name string, buf []byte) (int, error) {
	if err := f.hit("readlink", name); err != nil {
		return 0, err
	}
	return f.inner.ReadlinkInto(name, buf)
}

func (f *faultFS) Lstat(name string) (fs.FileInfo, error) {
	if err := f.hit("lstat", name); err != nil {
		return nil, err
	}
	return f.inner.Lstat(name)
}

func (f *faultFS) Stat(name string) (fs.FileInfo, error) {
	if err := f.hit("stat", name); err != nil {
		return nil, err
	}
	return f.inner.Stat(name)
}

func (f *faultFS) Readlink(name string) (string, error) {
	if err := f.hit("readlink", name); err != nil {
		return "", err
	}
	return f.inner.Readlink(name)
}

func (f *faultFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := f.hit("readdir", name); err != nil {
		return nil, err
	}
	return f.inner.ReadDir(name)
}

func (f *faultFS) CreateTemp(dir, pattern string) (atomicfile.File, error) {
	if err := f.hit("create", pattern); err != nil {
		return nil, err
	}
	tf, err := f.inner.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: tf, fs: f}, nil
}

func (f *faultFS) Symlink(target, name string) error {
	if err := f.hit("symlink", name); err != nil {
		return err
	}
	return f.inner.Symlink(target, name)
}

func (f *faultFS) Rename(from, to string) error {
	if err := f.hit("rename", to); err != nil {
		return err
	}
	return f.inner.Rename(from, to)
}

func (f *faultFS) Exchange(a, b string) error {
	if err := f.hit("exchange", b); err != nil {
		return err
	}
	if f.noExchange {
		return disk.ErrExchangeUnsupported
	}
	return f.inner.Exchange(a, b)
}

func (f *faultFS) RenameNoReplace(from, to string) error {
	if err := f.hit("rename-noreplace", to); err != nil {
		return err
	}
	if f.noExchange {
		return disk.ErrExchangeUnsupported
	}
	return f.inner.RenameNoReplace(from, to)
}

func (f *faultFS) Remove(name string) error {
	if !isTempName(filepath.Base(name)) {
		if err := f.hit("remove", name); err != nil {
			return err
		}
	}
	return f.inner.Remove(name)
}

func (f *faultFS) RemoveAll(name string) error {
	if err := f.hit("removeall", name); err != nil {
		return err
	}
	return f.inner.RemoveAll(name)
}

func (f *faultFS) Mkdir(name string, perm fs.FileMode) error {
	if err := f.hit("mkdir", name); err != nil {
		return err
	}
	return f.inner.Mkdir(name, perm)
}

func (f *faultFS) SyncDir(dir string) error {
	if err := f.hit("syncdir", dir); err != nil {
		return err
	}
	return f.inner.SyncDir(dir)
}

func (f *faultFS) TryLock(name string) (func() error, bool, error) {
	if err := f.hit("lock", name); err != nil {
		return nil, false, err
	}
	return f.inner.TryLock(name)
}

func (f *faultFS) LockOpen(name string, create bool) (*os.File, bool, error) {
	if err := f.hit("lockopen", name); err != nil {
		return nil, false, err
	}
	return f.inner.LockOpen(name, create)
}

func (f *faultFS) Chtimes(name string, atime, mtime time.Time) error {
	if err := f.hit("chtimes", name); err != nil {
		return err
	}
	return f.inner.Chtimes(name, atime, mtime)
}

func (f *faultFS) Chmod(name string, mode fs.FileMode) error {
	if err := f.hit("chmod", name); err != nil {
		return err
	}
	return f.inner.Chmod(name, mode)
}

// Append counts as "append", and a durable one also as "fsync".
func (f *faultFS) Append(name string, data []byte, durable bool) error {
	if err := f.hit("append", name); err != nil {
		return err
	}
	if durable {
		if err := f.hit("fsync", name); err != nil {
			return err
		}
	}
	return f.inner.Append(name, data, durable)
}

// AppendRecord counts as "append", and a durable one also as "fsync".
func (f *faultFS) AppendRecord(name string, data []byte, durable, create bool) (int64, error) {
	if err := f.hit("append", name); err != nil {
		return 0, err
	}
	if durable {
		if err := f.hit("fsync", name); err != nil {
			return 0, err
		}
	}
	return f.inner.AppendRecord(name, data, durable, create)
}

func (f *faultFS) EvalSymlinks(name string) (string, error) {
	if err := f.hit("realpath", name); err != nil {
		return "", err
	}
	return f.inner.EvalSymlinks(name)
}

func (f *faultFS) Lchown(name string, uid, gid int) error {
	if err := f.hit("lchown", name); err != nil {
		return err
	}
	return f.inner.Lchown(name, uid, gid)
}

// faultFile counts writes, syncs and closes of a temp file.
type faultFile struct {
	atomicfile.File
	fs *faultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.hit("write", f.Name()); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *faultFile) Sync() error {
	if err := f.fs.hit("sync", f.Name()); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultFile) Close() error {
	if err := f.fs.hit("close", f.Name()); err != nil {
		_ = f.File.Close()
		return err
	}
	return f.File.Close()
}

// withFS swaps the manager's file-system seam (tests only).
func withFS(fsys disk.FS) Option {
	return func(c *config) { c.fs = fsys }
}

// withStaleScale scales the CLI lock directories' stale times (tests only).
func withStaleScale(x float64) Option {
	return func(c *config) { c.staleScale = x }
}

// withSweepAge sets the age at which leftovers are swept (tests only).
func withSweepAge(d time.Duration) Option {
	return func(c *config) { c.sweepAge = d }
}

// refreshTokenOf returns the Claude Code refresh token in data, or "" (the
// tests' one way to see which login a file holds; the package itself only
// ever keeps its hash).
func refreshTokenOf(data []byte) string {
	var doc struct {
		ClaudeAiOauth struct {
			RefreshToken string `json:"refreshToken"`
		} `json:"claudeAiOauth"`
	}
	if json.Unmarshal(data, &doc) != nil {
		return ""
	}
	return doc.ClaudeAiOauth.RefreshToken
}
