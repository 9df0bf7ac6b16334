package jsonscan

import (
	"encoding/binary"
	"math/bits"
)

// maxNestingDepth is encoding/json's bound on nested objects and arrays:
// a deeper document is not valid.
const maxNestingDepth = 10000

// strPlain reports whether c may stand for itself inside a JSON string:
// anything but a control character, the quote and the backslash. As
// encoding/json does, bytes of invalid UTF-8 are accepted (a decoder
// replaces them with U+FFFD). It is arithmetic rather than a table, which
// a read straight after a system call would find out of the cache.
func strPlain(c byte) bool { return c >= 0x20 && c != '"' && c != '\\' }

// Valid reports whether data is exactly one JSON document, with the answer
// of encoding/json's Valid on every input (the fuzz test holds it to that),
// in one pass that allocates nothing for documents nested up to 64 deep.
func Valid(data []byte) bool {
	i := validValue(data, skipSpace(data, 0), 0)
	return i >= 0 && skipSpace(data, i) == len(data)
}

// validString checks the string starting at data[i] (a quote) and returns
// its end, or -1.
func validString(data []byte, i int) int {
	for i++; ; {
		i = nextSpecial(data, i)
		if i >= len(data) {
			return -1
		}
		switch data[i] {
		case '"':
			return i + 1
		case '\\':
			if i = validEscape(data, i); i < 0 {
				return -1
			}
		default: // a control character
			return -1
		}
	}
}

// validEscape checks the escape starting at data[i] (a backslash) and
// returns its end, or -1.
func validEscape(data []byte, i int) int {
	if i+1 >= len(data) {
		return -1
	}
	switch data[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2
	case 'u':
		if i+6 > len(data) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) || !isHex(data[i+5]) {
			return -1
		}
		return i + 6
	}
	return -1
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(data []byte, i int) bool { return i < len(data) && data[i] >= '0' && data[i] <= '9' }

// validNumber checks the number starting at data[i] and returns its end,
// or -1: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(data []byte, i int) int {
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case isDigit(data, i):
		for i++; isDigit(data, i); i++ {
		}
	default:
		return -1
	}
	if i < len(data) && data[i] == '.' {
		i++
		if !isDigit(data, i) {
			return -1
		}
		for i++; isDigit(data, i); i++ {
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if !isDigit(data, i) {
			return -1
		}
		for i++; isDigit(data, i); i++ {
		}
	}
	return i
}

// validLiteral checks that data[i:] starts with lit and returns its end,
// or -1.
func validLiteral(data []byte, i int, lit string) int {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// Eight bytes at a time: the constants of the word-at-a-time tests below.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// nextSpecial returns the index of the first byte at or after i that is
// not a plain string byte (a control character, a quote or a backslash),
// or len(data): eight bytes at a time over a token's runs of plain text,
// the special byte found in its word by the word's mask.
func nextSpecial(data []byte, i int) int {
	for ; i+8 <= len(data); i += 8 {
		if m := specialMask(binary.LittleEndian.Uint64(data[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(data) && strPlain(data[i]) {
		i++
	}
	return i
}

// specialMask has the high bit of a byte of x set where the byte is a
// control character, a quote or a backslash. A byte above the lowest one
// flagged may be flagged falsely (a borrow from the byte below it); the
// lowest is always right, and a word with no special byte has none.
func specialMask(x uint64) uint64 {
	ctl := (x - ones*0x20) &^ x
	q := x ^ (ones * '"')
	b := x ^ (ones * '\\')
	return (ctl | (q-ones)&^q | (b-ones)&^b) & highs
}

// validKeyString is validString for a member's key that also reports
// whether the key has an escape: without one, its inner bytes are the key
// decoded when they are valid UTF-8 (encoding/json replaces invalid bytes
// with U+FFFD).
func validKeyString(data []byte, i int) (end int, escaped bool) {
	for i++; ; {
		i = nextSpecial(data, i)
		if i >= len(data) {
			return -1, false
		}
		switch data[i] {
		case '"':
			return i + 1, escaped
		case '\\':
			if i = validEscape(data, i); i < 0 {
				return -1, false
			}
			escaped = true
		default: // a control character
			return -1, false
		}
	}
}

// asciiOnly reports whether every byte of b is ASCII.
func asciiOnly(b []byte) bool {
	for ; len(b) >= 8; b = b[8:] {
		if binary.LittleEndian.Uint64(b)&highs != 0 {
			return false
		}
	}
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// validScalar validates the string, literal or number that starts at
// data[i] (its first byte c) and returns the index just past it, or -1.
func validScalar(data []byte, i int, c byte) int {
	switch {
	case c == '"':
		return validString(data, i)
	case c == 't':
		return validLiteral(data, i, "true")
	case c == 'f':
		return validLiteral(data, i, "false")
	case c == 'n':
		return validLiteral(data, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return validNumber(data, i)
	}
	return -1
}
