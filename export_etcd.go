package credslots

// This file exports the few mechanisms the etcd pool
// (github.com/gptme/credslots/etcd) shares with the Manager, so that it
// reads, splices and locks credential files exactly as the Manager does
// instead of keeping a second copy of each.

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/gptme/credslots/internal/atomicfile"
	"github.com/gptme/credslots/internal/disk"
	"github.com/gptme/credslots/internal/jsonscan"
)

// LoginInfo is what a credential document says of itself. It never holds
// token material: the identity is a sha256 hex fingerprint.
type LoginInfo struct {
	// Expiry is the access token's expiry, UTC, when HasExpiry.
	Expiry    time.Time
	HasExpiry bool
	// Fingerprint is the sha256 hex of the format's identity key ("" when
	// absent), as in the slot fingerprint sidecars.
	Fingerprint string
	// Login is the sha256 hex of the refresh token ("" when absent): the
	// single-use secret a refresh spends, so two documents with one Login
	// are one login, which a refresh through either ends in the other. It
	// is Fingerprint where the identity key is the refresh token; for
	// Codex CLI, whose identity is the account, it is the refresh token's.
	Login string
	// Blank names a blanked token field ("" when none): what a CLI leaves
	// after a failed refresh or a logout.
	Blank string
	// Problem says why the document cannot serve as a login ("" when it
	// has a readable expiry).
	Problem string
}

// InspectLogin reads the credential document data in format f. It never
// panics and keeps no token.
func InspectLogin(f Format, data []byte) LoginInfo {
	c := f.parse(data)
	return LoginInfo{Expiry: c.expiry, HasExpiry: c.hasExpiry(), Fingerprint: c.fingerprint, Login: c.login, Blank: c.blank, Problem: c.problem}
}

// ReadCredentialFile reads the regular file at name with the package's one
// bounded reader: never more than 1 MiB (larger is [ErrTooLarge]), never a
// FIFO or device.
func ReadCredentialFile(name string) ([]byte, error) { return disk.ReadRegular(name) }

// WriteCredentialFile replaces the file at name with data, mode 0600, with
// the package's one atomic writer: a temporary sibling written, fsynced and
// renamed over name, then the directory fsynced; a symlink at name is
// replaced, never followed; on error name is unchanged.
func WriteCredentialFile(name string, data []byte) error {
	return atomicfile.WriteFile(disk.OS{}, name, data, nil)
}

// LoginOf returns the part of the credential document doc that belongs to
// the login: for Claude Code the object {"claudeAiOauth": ...} (every other
// key is the seat's own); for Codex CLI and Gemini CLI the whole document.
// It returns an error when doc is not a JSON object (or, for Claude Code,
// has no claudeAiOauth object).
func LoginOf(f Format, doc []byte) ([]byte, error) {
	trimmed, problem := jsonscan.Document(doc)
	if problem != "" {
		return nil, fmt.Errorf("credslots: %s", problem)
	}
	if !f.carriesState() {
		if len(trimmed) == 0 || trimmed[0] != '{' {
			return nil, fmt.Errorf("credslots: not a JSON object")
		}
		return trimmed, nil
	}
	members, ok := jsonscan.Members(trimmed)
	if !ok {
		return nil, fmt.Errorf("credslots: not a JSON object")
	}
	for _, m := range members {
		if m.Name == accountKey && len(m.Value) > 0 && m.Value[0] == '{' {
			return jsonscan.WriteObject([]jsonscan.Member{m}), nil
		}
	}
	return nil, fmt.Errorf("credslots: missing %s payload", accountKey)
}

// WithLogin returns the seat document seat (nil when the seat has none)
// holding login, a document LoginOf returned: for Claude Code login's
// claudeAiOauth is spliced into seat and every other byte of seat stays;
// for the other formats the result is login itself.
func WithLogin(f Format, seat, login []byte) ([]byte, error) {
	if !f.carriesState() || len(seat) == 0 {
		return login, nil
	}
	value := jsonscan.Fields(login, accountKey)[0]
	if len(value) == 0 {
		return nil, fmt.Errorf("credslots: login has no %s payload", accountKey)
	}
	doc, problem := jsonscan.Document(seat)
	if problem != "" {
		return login, nil // an unreadable seat file holds nothing to keep
	}
	out, ok := spliceMember(seat, doc, accountKey, value)
	if !ok {
		return login, nil
	}
	return out, nil
}

// WithoutLogin returns the seat document with the login taken out: for
// Claude Code every key but claudeAiOauth, byte for byte; ok is false when
// nothing would remain (the other formats, or a seat holding only the
// login), and then the seat file is to be removed.
func WithoutLogin(f Format, seat []byte) (rest []byte, ok bool) {
	if !f.carriesState() {
		return nil, false
	}
	doc, problem := jsonscan.Document(seat)
	if problem != "" {
		return nil, false
	}
	members, isObject := jsonscan.Members(doc)
	if !isObject {
		return nil, false
	}
	var keep []jsonscan.Member
	for _, m := range members {
		if m.Name != accountKey {
			keep = append(keep, m)
		}
	}
	if len(keep) == 0 {
		return nil, false
	}
	return jsonscan.WriteObject(keep), true
}

// LockCLI takes, for the creds dir (or seat) dir, the locks format f's CLI
// takes around a token refresh, in its order, the way it takes them, waiting
// at most timeout. The returned function releases them. Reading a seat under
// these locks never copies a refresh half done.
func LockCLI(f Format, dir string, timeout time.Duration) (release func(), err error) {
	var real string
	if f.needsRealDir() {
		r, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return nil, fmt.Errorf("credslots: resolve %s: %w", dir, err)
		}
		real = filepath.Clean(r)
	}
	fsys := disk.OS{}
	mu := &mutation{}
	start := time.Now()
	deadline := start.Add(timeout)
	for _, cl := range f.cliLocks(dir, real) {
		if _, _, err := mu.take(context.Background(), fsys, cl, 1, start, deadline, nil); err != nil {
			mu.end()
			return nil, err
		}
	}
	return mu.end, nil
}
