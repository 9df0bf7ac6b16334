package jsonscan

import (
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Unix seconds of 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z.
const (
	minUnixSeconds = -62135596800
	maxUnixSeconds = 253402300800
)

// DecimalTime converts a JSON number (its literal text) counting units
// (time.Second or time.Millisecond) since the Unix epoch into a UTC time,
// exactly: the decimal is never rounded through a float. A fraction finer
// than a nanosecond rounds up, which keeps every comparison with a
// whole-nanosecond time (now, now+grace) exact: an expiry of exactly
// now+grace is never fresh. ok is false outside the years 1 to 9999.
func DecimalTime(num string, unit time.Duration) (time.Time, bool) {
	per := int64(time.Second / unit)
	if n, ok := smallInt(num); ok {
		return smallTime(n, per, unit)
	}
	return decimalTime(num, unit)
}

// RawTime is DecimalTime for a raw JSON value: ok is false when raw is not
// a number. The common expiry, an integer of at most 18 digits, is read
// where it lies, without a copy.
func RawTime(raw []byte, unit time.Duration) (t time.Time, isNumber, ok bool) {
	if len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return time.Time{}, false, false
	}
	if n, small := smallInt(raw); small {
		t, ok = smallTime(n, int64(time.Second/unit), unit)
		return t, true, ok
	}
	t, ok = decimalTime(string(raw), unit)
	return t, true, ok
}

// smallTime is DecimalTime of the integer n, in units of which per make a
// second.
func smallTime(n, per int64, unit time.Duration) (time.Time, bool) {
	sec, rem := n/per, n%per
	if rem < 0 {
		sec, rem = sec-1, rem+per
	}
	return unixChecked(sec, rem*int64(unit))
}

// decimalTime is DecimalTime past smallInt: an integer strconv reads, or a
// decimal.
func decimalTime(num string, unit time.Duration) (time.Time, bool) {
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		return smallTime(n, int64(time.Second/unit), unit)
	}
	sec, nsec, ok := decimalNanos(num, len(strconv.FormatInt(int64(unit), 10))-1)
	if !ok {
		return time.Time{}, false
	}
	return unixChecked(sec, nsec)
}

// smallInt reads a JSON integer literal of at most 18 digits (every
// expiry in Unix seconds or milliseconds), the common case, without
// strconv's generality.
func smallInt[T string | []byte](num T) (int64, bool) {
	digits := num
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if len(digits) < len(num) {
		n = -n
	}
	return n, true
}

// unixChecked is time.Unix(sec, nsec) in UTC when sec is within the years
// 1 to 9999.
func unixChecked(sec, nsec int64) (time.Time, bool) {
	if sec < minUnixSeconds || sec >= maxUnixSeconds {
		return time.Time{}, false
	}
	return time.Unix(sec, nsec).UTC(), true
}

// maxSignificant bounds the digits decimalNanos computes with; digits past
// it only decide the rounding.
const maxSignificant = 40

// decimalNanos reads a JSON number literal times 10^shift as a count of
// nanoseconds, rounded up, split into seconds and nanoseconds. It reports
// false when the value's magnitude is beyond any time it could name.
func decimalNanos(num string, shift int) (sec, nsec int64, ok bool) {
	neg := strings.HasPrefix(num, "-")
	num = strings.TrimPrefix(num, "-")
	mant, expText, hasExp := strings.Cut(strings.ToLower(num), "e")
	exp := 0
	if hasExp {
		e, err := strconv.Atoi(expText)
		if err != nil {
			// Beyond int: astronomically large or small.
			if strings.HasPrefix(expText, "-") {
				e = -1 << 30
			} else {
				e = 1 << 30
			}
		}
		exp = max(min(e, 1<<30), -1<<30)
	}
	whole, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(whole+frac, "0")
	k := exp - len(frac) + shift // value = digits × 10^k nanoseconds
	trimmed := strings.TrimRight(digits, "0")
	k += len(digits) - len(trimmed)
	digits = trimmed
	if digits == "" {
		return 0, 0, true
	}
	// 10^22 ns is past year 300000: out of range whatever the digits.
	if len(digits)-1+k > 22 {
		return 0, 0, false
	}
	sticky := false // nonzero digits below the nanosecond
	if len(digits) > maxSignificant {
		k += len(digits) - maxSignificant
		digits, sticky = digits[:maxSignificant], true
	}
	n := new(big.Int)
	switch {
	case k >= 0:
		n.SetString(digits, 10)
		n.Mul(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(k)), nil))
	case -k >= len(digits):
		sticky = true // below a nanosecond: n stays 0
	default:
		n.SetString(digits[:len(digits)+k], 10)
		sticky = true // the cut digits end in a nonzero one
	}
	if neg {
		n.Neg(n) // rounding up a negative value drops its fraction
	} else if sticky {
		n.Add(n, big.NewInt(1))
	}
	q, r := new(big.Int).DivMod(n, big.NewInt(int64(time.Second)), new(big.Int))
	if !q.IsInt64() {
		return 0, 0, false
	}
	return q.Int64(), r.Int64(), true
}
