package credfile

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gptme/credslots/internal/jsonscan"
)

// Want says which fields a read computes.
type Want uint8

const (
	// Expiry: Credential.Expiry, ExpiryOK and Problem.
	Expiry Want = 1 << iota
	// Identity: Credential.Fingerprint.
	Identity
	// Blank: Credential.Blank.
	Blank
	// Login: Credential.Login.
	Login
	// All fields.
	All = Expiry | Identity | Blank | Login
)

// Credential is what a read found in one credential document. A field
// that was not wanted is its zero value.
type Credential struct {
	// Problem says why the document has no readable expiry, in the words
	// of credslots' reasons ("missing claudeAiOauth payload"); "" when it
	// has one. A document that is not JSON has its problem whatever was
	// wanted.
	Problem string
	// Expiry is the access token's expiry, UTC, when ExpiryOK.
	Expiry time.Time
	// ExpiryOK is set only by a read that wanted and found the expiry.
	ExpiryOK bool
	// Fingerprint is the sha256 hex of the identity key; "" when absent.
	Fingerprint string
	// Login is the sha256 hex of the refresh token, the single-use secret
	// a refresh spends: two documents with the same Login are one login,
	// which a refresh through one ends in the other. It is Fingerprint
	// where the identity key is the refresh token; "" when absent.
	Login string
	// Blank names a blanked field ("claudeAiOauth.accessToken"); "" when none.
	Blank string
}

// Format is one CLI's credential document: the root member its login
// lives in ("" for the root itself) and the members read there, found in
// one validating pass (jsonscan.Lookup).
type Format struct {
	outer string
	names []string
	// read builds the credential from the login's raw value and its
	// members' (in the order of names).
	read func(login []byte, v [4][]byte, want Want) Credential
}

// Parse validates data once and reads the wanted fields of format f.
func Parse(f *Format, data []byte, want Want) Credential {
	login, v, problem := jsonscan.Lookup(data, f.outer, f.names...)
	if problem != "" {
		return Credential{Problem: problem}
	}
	c := f.read(login, v, want)
	c.ExpiryOK = want&Expiry != 0 && c.Problem == ""
	return c
}

// The formats.
var (
	// Claude is Claude Code's .credentials.json: claudeAiOauth.expiresAt
	// (Unix ms), identity claudeAiOauth.refreshToken, blank when
	// accessToken is empty or refreshToken present and empty.
	Claude = &Format{outer: "claudeAiOauth", names: []string{"accessToken", "refreshToken", "expiresAt"}, read: readClaude}
	// Gemini is Gemini CLI's oauth_creds.json: expiry_date (Unix ms),
	// identity refresh_token, blank when access_token is empty.
	Gemini = &Format{names: []string{"access_token", "refresh_token", "expiry_date"}, read: readGemini}
	// Codex is Codex CLI's auth.json: the exp claim (Unix seconds) of the
	// JWT in tokens.access_token, decoded without verifying its signature;
	// identity tokens.account_id, login tokens.refresh_token; blank when
	// tokens.access_token is empty.
	Codex = &Format{outer: "tokens", names: []string{"access_token", "account_id", "refresh_token"}, read: readCodex}
)

func readClaude(oauth []byte, v [4][]byte, want Want) Credential {
	var c Credential
	if len(oauth) == 0 || oauth[0] != '{' {
		c.Problem = "missing claudeAiOauth payload"
		return c
	}
	if want&(Identity|Login) != 0 {
		c.Fingerprint = Fingerprint(v[1])
		c.Login = c.Fingerprint
		if want&Identity == 0 {
			c.Fingerprint = ""
		}
		if want&Login == 0 {
			c.Login = ""
		}
	}
	if want&Blank != 0 {
		c.Blank = blankField("claudeAiOauth.", []string{"accessToken", "refreshToken"}, v[0], v[1])
	}
	if want&Expiry != 0 {
		c.Expiry, c.Problem = msExpiry(v[2], "expiresAt")
	}
	return c
}

func readGemini(_ []byte, v [4][]byte, want Want) Credential {
	var c Credential
	if want&(Identity|Login) != 0 {
		c.Fingerprint = Fingerprint(v[1])
		c.Login = c.Fingerprint
		if want&Identity == 0 {
			c.Fingerprint = ""
		}
		if want&Login == 0 {
			c.Login = ""
		}
	}
	if want&Blank != 0 {
		c.Blank = blankField("", []string{"access_token"}, v[0])
	}
	if want&Expiry != 0 {
		c.Expiry, c.Problem = msExpiry(v[2], "expiry_date")
	}
	return c
}

func readCodex(tokens []byte, v [4][]byte, want Want) Credential {
	var c Credential
	if len(tokens) == 0 || tokens[0] != '{' {
		c.Problem = "missing tokens payload"
		return c
	}
	if want&Identity != 0 {
		c.Fingerprint = Fingerprint(v[1])
	}
	if want&Login != 0 {
		c.Login = Fingerprint(v[2])
	}
	if want&Blank != 0 {
		c.Blank = blankField("tokens.", []string{"access_token"}, v[0])
	}
	if want&Expiry != 0 {
		c.Expiry, c.Problem = jwtExpiry(v[0])
	}
	return c
}

// jwtExpiry reads the exp claim of the JWT in the raw JSON string raw.
func jwtExpiry(raw []byte) (time.Time, string) {
	jwt, ok := jsonscan.String(raw)
	if !ok || jwt == "" {
		return time.Time{}, "missing tokens.access_token"
	}
	claims, ok := jwtClaims(jwt)
	if !ok {
		return time.Time{}, "tokens.access_token exp unparseable"
	}
	num, ok := jsonscan.Number(jsonscan.Fields(claims, "exp")[0])
	if !ok {
		return time.Time{}, "missing tokens.access_token exp"
	}
	exp, ok := jsonscan.DecimalTime(num, time.Second)
	if !ok {
		return time.Time{}, "tokens.access_token exp unparseable"
	}
	return exp, ""
}

// msExpiry reads a raw JSON number of Unix milliseconds. problem is "missing
// <field>" when raw is not a number and "<field> unparseable" when it is
// out of the years 1 to 9999.
func msExpiry(raw []byte, field string) (time.Time, string) {
	exp, isNumber, ok := jsonscan.RawTime(raw, time.Millisecond)
	if !isNumber {
		return time.Time{}, "missing " + field
	}
	if !ok {
		return time.Time{}, field + " unparseable"
	}
	return exp, ""
}

// Fingerprint hashes a raw identity value that is a non-empty JSON string
// (the sha256 hex of its decoded UTF-8 bytes); "" for anything else. A
// string without escapes, in valid UTF-8, is hashed where it lies.
func Fingerprint(raw []byte) string {
	if len(raw) < 2 || raw[0] != '"' {
		return ""
	}
	inner := raw[1 : len(raw)-1]
	if !hasBackslash(inner) && utf8.Valid(inner) {
		if len(inner) == 0 {
			return ""
		}
		return Hash(inner)
	}
	s, ok := jsonscan.String(raw)
	if !ok || s == "" {
		return ""
	}
	return Hash([]byte(s))
}

// plainString reports whether the inner bytes of a raw JSON string are
// the string decoded: no escape, valid UTF-8.
func plainString(inner []byte) bool { return !hasBackslash(inner) && utf8.Valid(inner) }

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// Hash returns the lowercase sha256 hex of b. The string is one of the
// last few Hash or Sidecar returned when it is the same (see interned): a
// check of an identity that has not changed allocates nothing.
func Hash(b []byte) string {
	sum := sha256.Sum256(b)
	var out [hexLen]byte
	hex.Encode(out[:], sum[:])
	return intern(out[:])
}

// hexLen is the length of a fingerprint: a sha256 digest in hex.
const hexLen = sha256.Size * 2

// internBits sizes interned: 16 fingerprints, those of a few subs' slots
// and sidecars.
const internBits = 4

// interned holds fingerprints Hash and Sidecar returned, each at a place
// its first bytes choose (a digest's bytes are uniform); an entry is
// replaced whole, so a concurrent reader sees an old or a new string,
// never a mix. It holds hashes only, never token material.
var interned [1 << internBits]atomic.Pointer[string]

// internSlot is where interned keeps the fingerprint fp (hexLen bytes).
func internSlot(fp []byte) uint64 {
	return binary.LittleEndian.Uint64(fp) * 0x9e3779b97f4a7c15 >> (64 - internBits)
}

// intern returns the string of the fingerprint fp (hexLen bytes): the one
// interned holds when it is the same, else a new one, kept there.
func intern(fp []byte) string {
	entry := &interned[internSlot(fp)]
	if s := entry.Load(); s != nil && *s == string(fp) {
		return *s
	}
	s := string(fp)
	entry.Store(&s)
	return s
}

// blankField returns the first of names whose raw value is present but
// holds no usable token (an empty string or null), prefixed for reasons.
func blankField(prefix string, names []string, raws ...[]byte) string {
	for n, raw := range raws {
		if raw == nil {
			continue
		}
		if s, ok := jsonscan.String(raw); ok && s == "" || string(raw) == "null" {
			return prefix + names[n]
		}
	}
	return ""
}

// jwtClaims decodes a JWT's payload segment without verifying anything and
// returns it when it is a JSON document.
func jwtClaims(jwt string) ([]byte, bool) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 || parts[1] == "" {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, false
	}
	claims, problem := jsonscan.Document(raw)
	return claims, problem == ""
}

// Sidecar reads an identity sidecar document once: its fingerprint
// (refresh_token_sha256, when a non-empty string) and its raw oauth_account
// object (a sub-slice of data; nil when absent or not an object). A
// malformed document has neither.
func Sidecar(data []byte) (fp string, account []byte) {
	_, v, problem := jsonscan.Lookup(data, "", "refresh_token_sha256", "oauth_account")
	if problem != "" {
		return "", nil
	}
	if raw := v[0]; len(raw) == hexLen+2 && raw[0] == '"' && plainString(raw[1:hexLen+1]) {
		fp = intern(raw[1 : hexLen+1]) // a fingerprint as credslots writes it
	} else if s, ok := jsonscan.String(raw); ok {
		fp = s
	}
	if len(v[1]) > 0 && v[1][0] == '{' {
		account = v[1]
	}
	return fp, account
}
