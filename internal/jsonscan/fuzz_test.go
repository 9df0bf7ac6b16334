package jsonscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/jsonscan/oracle"
)

// FuzzDecimalTime checks DecimalTime against an exact oracle (math/big) on
// every JSON number literal. Seeds live in testdata/fuzz.

// jsonNumberLiteral reports whether s is exactly one JSON number, nothing
// around it.
func jsonNumberLiteral(s string) bool {
	if !json.Valid([]byte(s)) {
		return false
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return false
	}
	n, ok := v.(json.Number)
	return ok && string(n) == s
}

func FuzzDecimalTime(f *testing.F) {
	for _, s := range []string{
		"0", "-0", "1767225600000", "1767225600000.5", "1767225600000.0000000001",
		"1.7672256e12", "17672256e5", "17672256E+5", "-62135596800000", "-62135596800000.0000001",
		"-62135596800001", "253402300799999.999999", "253402300799999.9999995", "253402300800000",
		"1e-400", "-1e-400", "1e400", "0.0000001", "-0.0000001", "9223372036854775807",
		"-9223372036854775808", "9223372036854775808", "1e22", "0e99999999999999999999",
		"123456789012345678901234567890123456789012345678901234567890e-47",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, num string) {
		if !jsonNumberLiteral(num) {
			return
		}
		for _, unit := range []time.Duration{time.Millisecond, time.Second} {
			got, ok := DecimalTime(num, unit)
			want, wok := oracle.Decimal(num, unit)
			if ok != wok {
				t.Fatalf("DecimalTime(%q, %v) ok=%v (%s), oracle ok=%v (%s)", num, unit, ok,
					got.Format(time.RFC3339Nano), wok, want.Format(time.RFC3339Nano))
			}
			if ok && (!got.Equal(want) || got.Location() != time.UTC) {
				t.Fatalf("DecimalTime(%q, %v) = %s, oracle %s", num, unit, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
			}
			raw, isNumber, rok := RawTime([]byte(num), unit)
			if !isNumber || rok != ok || raw != got {
				t.Fatalf("RawTime(%q, %v) = %s, %v, %v; DecimalTime %s, %v", num, unit, raw, isNumber, rok, got, ok)
			}
		}
	})
}

// FuzzValid holds Valid to encoding/json's Valid on every input.
func FuzzValid(f *testing.F) {
	for _, s := range validCases {
		f.Add([]byte(s.doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := Valid(data), json.Valid(data); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", data, got, want)
		}
	})
}

// FuzzFields holds Fields to encoding/json: every member of an object
// decoded into a map of raw values is found, with the same bytes.
func FuzzFields(f *testing.F) {
	for _, s := range []string{`{"a":"x\\","b":[1,{"c":"\""}],"a\\"":2}`, `{"\u0061":1,"a":2}`, `{"k":"0123456789abcdef\\\\"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var members map[string]json.RawMessage
		root, problem := Document(data)
		if problem != "" || json.Unmarshal(data, &members) != nil || members == nil {
			return
		}
		for name, want := range members {
			if got := Fields(root, name)[0]; string(got) != string(want) {
				t.Fatalf("Fields(%q, %q) = %q, encoding/json %q", data, name, got, want)
			}
		}
	})
}

// FuzzLookup holds Lookup to Document and Fields, for a nested and a
// top-level query.
func FuzzLookup(f *testing.F) {
	for _, s := range []string{
		`{"claudeAiOauth":{"accessToken":"a","refreshToken":"r","expiresAt":1},"x":[{"expiresAt":2}]}`,
		`{"claudeAiOauth":{"expiresAt":1},"claudeAiOauth":3}`, `{"claudeAiOauth":[{"expiresAt":1}]}`,
		`{"\u0063laudeAiOauth":{"expires\u0041t":{"a":[1,2]},"expiresAt":"x"}}`, `[{"claudeAiOauth":{"expiresAt":1}}]`,
		`{"access_token":"a","expiry_date":[1],"access_token":{}}`, ` {"claudeAiOauth":{}} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, q := range []struct {
			outer string
			names []string
		}{{"claudeAiOauth", []string{"accessToken", "refreshToken", "expiresAt"}}, {"", []string{"access_token", "claudeAiOauth", "expiry_date", "access_token"}}} {
			root, problem := Document(data)
			outerVal, vals, got := Lookup(data, q.outer, q.names...)
			if got != problem {
				t.Fatalf("Lookup(%q) problem %q, Document %q", data, got, problem)
			}
			if problem != "" {
				continue
			}
			wantOuter := root
			if q.outer != "" {
				wantOuter = Fields(root, q.outer)[0]
			}
			if !bytes.Equal(outerVal, wantOuter) || (outerVal == nil) != (wantOuter == nil) {
				t.Fatalf("Lookup(%q, %q) outer %q, Fields %q", data, q.outer, outerVal, wantOuter)
			}
			want := Fields(wantOuter, q.names...)
			for n := range q.names {
				if !bytes.Equal(vals[n], want[n]) || (vals[n] == nil) != (want[n] == nil) {
					t.Fatalf("Lookup(%q, %q) %s = %q, Fields %q", data, q.outer, q.names[n], vals[n], want[n])
				}
			}
		}
	})
}
