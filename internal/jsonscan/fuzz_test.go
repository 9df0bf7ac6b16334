package jsonscan

import (
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzDecimalTime checks DecimalTime against an exact oracle (math/big) on
// every JSON number literal. Seeds live in testdata/fuzz.

// The Unix seconds of the first instant of year 1 and of year 10000.
var (
	oracleMinSec = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	oracleEndSec = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
)

// oracleDecimal is the exact reading of a JSON number literal counting
// units since the epoch: the literal as a rational (math/big), times the
// unit, rounded up to the nanosecond, and kept only within the years 1 to
// 9999. A literal exponent far beyond the mantissa's length decides without
// big arithmetic (10^|exp| would be huge): the value is then either past any
// year or closer to zero than a nanosecond, as strconv.ParseFloat agrees.
func oracleDecimal(num string, unit time.Duration) (time.Time, bool) {
	mant, expText, hasExp := strings.Cut(strings.ToLower(num), "e")
	r, ok := new(big.Rat).SetString(mant)
	if !ok || strings.ContainsAny(mant, "eE/") {
		return time.Time{}, false
	}
	exp := 0
	if hasExp {
		e, err := strconv.Atoi(expText)
		switch {
		case err == nil:
			exp = e
		case strings.HasPrefix(expText, "-"):
			exp = math.MinInt32
		default:
			exp = math.MaxInt32
		}
	}
	// 10^-len(mant) <= |mantissa| < 10^len(mant) for a nonzero mantissa.
	bound := len(mant) + 40
	switch {
	case r.Sign() == 0:
		return time.Unix(0, 0).UTC(), true
	case exp > bound: // |value| > 10^40 units
		if f, err := strconv.ParseFloat(num, 64); err == nil && math.Abs(f) < 1e30 {
			panic("oracle: ParseFloat disagrees on a huge value " + num)
		}
		return time.Time{}, false
	case exp < -bound: // 0 < |value| < 10^-40 units: rounds up to 1 ns or to 0
		if f, _ := strconv.ParseFloat(num, 64); math.Abs(f) > 1e-30 {
			panic("oracle: ParseFloat disagrees on a tiny value " + num)
		}
		if r.Sign() > 0 {
			return time.Unix(0, 1).UTC(), true
		}
		return time.Unix(0, 0).UTC(), true
	}
	pow := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(exp))), nil))
	if exp >= 0 {
		r.Mul(r, pow)
	} else {
		r.Quo(r, pow)
	}
	r.Mul(r, new(big.Rat).SetInt64(int64(unit))) // nanoseconds
	// Round up: the ceiling of num/den, den > 0.
	ns, rem := new(big.Int).DivMod(r.Num(), r.Denom(), new(big.Int)) // floor, rem >= 0
	if rem.Sign() != 0 {
		ns.Add(ns, big.NewInt(1))
	}
	sec, nsec := new(big.Int).DivMod(ns, big.NewInt(int64(time.Second)), new(big.Int))
	if !sec.IsInt64() || sec.Int64() < oracleMinSec || sec.Int64() >= oracleEndSec {
		return time.Time{}, false
	}
	t := time.Unix(sec.Int64(), nsec.Int64()).UTC()
	if t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, false
	}
	return t, true
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

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
			want, wok := oracleDecimal(num, unit)
			if ok != wok {
				t.Fatalf("DecimalTime(%q, %v) ok=%v (%s), oracle ok=%v (%s)", num, unit, ok,
					got.Format(time.RFC3339Nano), wok, want.Format(time.RFC3339Nano))
			}
			if ok && (!got.Equal(want) || got.Location() != time.UTC) {
				t.Fatalf("DecimalTime(%q, %v) = %s, oracle %s", num, unit, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
			}
		}
	})
}
