package credslots

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/jsonscan/oracle"
)

// The fuzz targets check each reader against an oracle that walks the
// generic JSON document: whatever the reader accepts, the oracle must find at
// the documented place with the documented type and range; nothing the
// documented rules call unknown may be accepted. Seeds live in testdata/fuzz.

// decode is the oracle's reading of a document: valid JSON (json.Valid),
// with numbers kept as json.Number so that a number too large for float64
// in an unrelated field does not make the document invalid.
func decode(data []byte) (any, bool) {
	if !json.Valid(data) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	return doc, dec.Decode(&doc) == nil
}

// lookup walks nested objects in a decoded document.
func lookup(doc any, path ...string) (any, bool) {
	for _, key := range path {
		obj, ok := doc.(map[string]any)
		if !ok {
			return nil, false
		}
		if doc, ok = obj[key]; !ok {
			return nil, false
		}
	}
	return doc, true
}

// oracleTime reads a number at path, in units since the epoch, within years 1 to 9999.
func oracleTime(doc any, unit time.Duration, path ...string) (time.Time, bool) {
	v, ok := lookup(doc, path...)
	num, isNum := v.(json.Number)
	if !ok || !isNum {
		return time.Time{}, false
	}
	return oracle.Decimal(string(num), unit)
}

func oracleString(doc any, path ...string) string {
	v, _ := lookup(doc, path...)
	s, _ := v.(string)
	return s
}

// checkCredential compares a parsed credential with the oracle's reading.
func checkCredential(t *testing.T, c credential, ok bool, want time.Time, identity, login string) {
	t.Helper()
	if c.hasExpiry() != ok {
		t.Fatalf("expiry readable=%v, oracle says %v (problem %q)", c.hasExpiry(), ok, c.problem)
	}
	if ok {
		// The oracle is exact: equal to the nanosecond.
		if !c.expiry.Equal(want) {
			t.Fatalf("expiry %s, oracle %s", c.expiry.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
		if c.expiry.Location() != time.UTC {
			t.Fatalf("expiry not UTC")
		}
	}
	wantFP := ""
	if identity != "" {
		wantFP = hashBytes([]byte(identity))
	}
	if c.fingerprint != wantFP {
		t.Fatalf("fingerprint %q, oracle %q", c.fingerprint, wantFP)
	}
	wantLogin := ""
	if login != "" {
		wantLogin = hashBytes([]byte(login))
	}
	if c.login != wantLogin {
		t.Fatalf("login %q, oracle %q", c.login, wantLogin)
	}
}

func FuzzClaudeCredential(f *testing.F) {
	f.Add([]byte(`{"claudeAiOauth":{"refreshToken":"rt","expiresAt":1767225600000}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := ClaudeCode.parse(data)
		doc, ok := decode(data)
		if !ok {
			checkCredential(t, c, false, time.Time{}, "", "")
			return
		}
		want, ok := oracleTime(doc, time.Millisecond, "claudeAiOauth", "expiresAt")
		rt := oracleString(doc, "claudeAiOauth", "refreshToken")
		checkCredential(t, c, ok, want, rt, rt)
	})
}

func FuzzGeminiCredential(f *testing.F) {
	f.Add([]byte(`{"access_token":"a","refresh_token":"rt","expiry_date":1767225600000}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := GeminiCLI.parse(data)
		doc, ok := decode(data)
		if !ok {
			checkCredential(t, c, false, time.Time{}, "", "")
			return
		}
		want, ok := oracleTime(doc, time.Millisecond, "expiry_date")
		rt := oracleString(doc, "refresh_token")
		checkCredential(t, c, ok, want, rt, rt)
	})
}

func FuzzCodexCredential(f *testing.F) {
	f.Add([]byte(`{"tokens":{"access_token":"eyJhbGciOiJub25lIn0.eyJleHAiOjE3NjcyMjU2MDB9.x","account_id":"a"}}`))
	f.Add([]byte(`{"tokens":{"access_token":"a","account_id":"a","refresh_token":"r\u00e9"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := CodexCLI.parse(data)
		doc, ok := decode(data)
		if !ok {
			checkCredential(t, c, false, time.Time{}, "", "")
			return
		}
		var want time.Time
		ok = false
		parts := strings.Split(oracleString(doc, "tokens", "access_token"), ".")
		if len(parts) == 3 {
			payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
			if claims, valid := decode(payload); err == nil && valid {
				want, ok = oracleTime(claims, time.Second, "exp")
			}
		}
		checkCredential(t, c, ok, want, oracleString(doc, "tokens", "account_id"), oracleString(doc, "tokens", "refresh_token"))
	})
}

func FuzzSidecar(f *testing.F) {
	f.Add([]byte(`{"refresh_token_sha256":"ab","slot":"bob"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fp, ok := parseSidecar(data)
		want := ""
		if doc, valid := decode(data); valid {
			want = oracleString(doc, "refresh_token_sha256")
		}
		if ok != (want != "") || fp != want {
			t.Fatalf("parseSidecar = %q, %v; oracle %q", fp, ok, want)
		}
	})
}
