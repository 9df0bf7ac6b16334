// Package oracle is the exact reading of JSON number literals as times,
// with math/big, that the fuzz tests of internal/jsonscan and of the root
// package hold the fast readers against. It is for tests only: slow,
// allocating, and never used by the package's code.
package oracle

import (
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// The Unix seconds of the first instant of year 1 and of year 10000.
var (
	minSec = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	endSec = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
)

// Decimal is the exact reading of a JSON number literal counting
// units since the epoch: the literal as a rational (math/big), times the
// unit, rounded up to the nanosecond, and kept only within the years 1 to
// 9999. A literal exponent far beyond the mantissa's length decides without
// big arithmetic (10^|exp| would be huge): the value is then either past any
// year or closer to zero than a nanosecond, as strconv.ParseFloat agrees.
func Decimal(num string, unit time.Duration) (time.Time, bool) {
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
	if !sec.IsInt64() || sec.Int64() < minSec || sec.Int64() >= endSec {
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
