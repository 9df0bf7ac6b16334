package jsonscan

import (
	"bytes"
	"encoding/json"
	"math/bits"
)

// Lookup is [Document] and [Fields] in one pass: it validates data as
// [Valid] does and, on the way, finds the value of the root object's
// member outer and the values of that value's members names (at most four),
// with exactly the answers of
//
//	root, problem := Document(data)
//	outerVal := Fields(root, outer)[0]
//	vals := Fields(outerVal, names...)
//
// With outer "", outerVal is the root itself and names are its members.
// problem is Document's reason when data is not one JSON document (then
// nothing else is returned). A credential's fields come out of one walk
// over its bytes instead of three.
func Lookup(data []byte, outer string, names ...string) (outerVal []byte, vals [4][]byte, problem string) {
	// names stays out of l, which holds what is returned: the caller's
	// variadic slice then never escapes.
	l := lookup{outer: outer, lens: lengths(names)}
	if !l.run(data, names) {
		return nil, [4][]byte{}, "unreadable or malformed JSON: " + invalidDetail(data)
	}
	if outer == "" {
		return bytes.TrimSpace(data), l.vals, ""
	}
	if len(l.outerVal) == 0 || l.outerVal[0] != '{' {
		return l.outerVal, [4][]byte{}, ""
	}
	return l.outerVal, l.vals, ""
}

// lookup is the state of one Lookup: what is asked for, and what the walk
// found so far.
type lookup struct {
	outer string
	// lens has bit n set for each name of n bytes (bit 63 for 63 or
	// more): a plain key of another length is none of them.
	lens uint64
	// ascii is 1 when outer and names are ASCII, 2 when not, 0 until a
	// key past ASCII asks (see asciiNames).
	ascii uint8

	outerVal []byte
	vals     [4][]byte
}

// lengths is lookup.lens for names.
func lengths(names []string) uint64 {
	var mask uint64
	for _, name := range names {
		mask |= 1 << min(len(name), 63)
	}
	return mask
}

// asciiNames reports whether outer and names are all ASCII: a key
// without an escape is then one of them exactly when its bytes are (a key
// with a byte past ASCII, valid UTF-8 or not, decodes to a string past
// ASCII).
func (l *lookup) asciiNames(names []string) bool {
	if l.ascii == 0 {
		l.ascii = 1
		if !isASCII(l.outer) {
			l.ascii = 2
		}
		for _, name := range names {
			if !isASCII(name) {
				l.ascii = 2
			}
		}
	}
	return l.ascii == 1
}

// isASCII reports whether every byte of s is ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// decodeKey decodes a raw key with an escape or a byte past ASCII, as
// encoding/json does.
func decodeKey(raw []byte) (string, bool) {
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err == nil
}

// keyIs reports whether the raw key (quotes included) is name. plain says
// that its inner bytes are the key decoded (plain ASCII, no escape), so
// that it compares byte for byte.
func keyIs(raw []byte, plain bool, name string) bool {
	if plain {
		return string(raw[1:len(raw)-1]) == name
	}
	decoded, ok := decodeKey(raw)
	return ok && decoded == name
}

// match returns which of names the raw key is, a bit for each. A plain
// key's length is one of names' (lookup.lens).
func (l *lookup) match(raw []byte, plain bool, names []string) uint8 {
	var mask uint8
	if plain {
		inner := raw[1 : len(raw)-1]
		for n, name := range names {
			if string(inner) == name {
				mask |= 1 << n
			}
		}
		return mask
	}
	if decoded, ok := decodeKey(raw); ok {
		for n, name := range names {
			if decoded == name {
				mask |= 1 << n
			}
		}
	}
	return mask
}

// run validates data as one JSON document, finding on the way what Lookup
// asks: the root object, and the outer object in it, are walked member by
// member (object); every other value is only validated (validValue).
func (l *lookup) run(data []byte, names []string) bool {
	i := skipSpace(data, 0)
	if i < len(data) && data[i] == '{' && (l.outer != "" || len(names) > 0) {
		i = l.object(data, i, 1, names)
	} else {
		i = validValue(data, i, 0)
	}
	return i >= 0 && skipSpace(data, i) == len(data)
}

// object validates the object at data[i] (a '{'), at depth (the root
// object is depth 1, the outer object in it depth 2), and returns its end,
// or -1. Its members' values are kept as Lookup asks: outer's at depth 1
// when there is an outer, names' otherwise. As encoding/json does, the
// last of duplicate members wins.
func (l *lookup) object(data []byte, i, depth int, names []string) int {
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return -1
		}
		end, escaped := validKeyString(data, i)
		if end < 0 {
			return -1
		}
		key := data[i:end]
		// plain: the key's inner bytes compare with outer and names byte
		// for byte (an ASCII key, or any key without an escape when they
		// are ASCII: see asciiNames); else it is decoded first.
		plain := !escaped && (asciiOnly(key[1:len(key)-1]) || l.asciiNames(names))
		if i = skipSpace(data, end); i >= len(data) || data[i] != ':' {
			return -1
		}
		v := skipSpace(data, i+1)
		switch {
		case depth == 1 && l.outer != "":
			if !keyIs(key, plain, l.outer) {
				i = validMember(data, v, depth)
				break
			}
			// A later outer replaces an earlier one, members and all.
			l.vals = [4][]byte{}
			if v < len(data) && data[v] == '{' {
				i = l.object(data, v, depth+1, names)
			} else {
				i = validMember(data, v, depth)
			}
			if i >= 0 {
				l.outerVal = data[v:i]
			}
		default:
			i = validMember(data, v, depth)
			// A plain key of none of names' lengths is none of them.
			if plain && l.lens&(1<<min(len(key)-2, 63)) == 0 {
				break
			}
			if mask := l.match(key, plain, names); mask != 0 && i >= 0 {
				for ; mask != 0; mask &= mask - 1 {
					l.vals[bits.TrailingZeros8(mask)] = data[v:i]
				}
			}
		}
		if i < 0 {
			return -1
		}
		if i = skipSpace(data, i); i >= len(data) {
			return -1
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return i + 1
		default:
			return -1
		}
	}
}

// validMember validates a member's value at data[i], inside depth open
// objects and arrays, and returns its end, or -1: a string or another
// scalar directly, an object or array with validValue.
func validMember(data []byte, i, depth int) int {
	if i >= len(data) {
		return -1
	}
	switch c := data[i]; c {
	case '"':
		return validString(data, i)
	case '{', '[':
		return validValue(data, i, depth)
	default:
		return validScalar(data, i, c)
	}
}

// validValue validates the JSON value at data[i], inside depth open
// objects and arrays, and returns its end, or -1. Nesting past
// maxNestingDepth in all is invalid; up to 64 levels within the value,
// it allocates nothing.
func validValue(data []byte, i, depth int) int {
	var stackBuf [64]byte
	stack := stackBuf[:0]
value:
	for {
		if i >= len(data) {
			return -1
		}
		switch c := data[i]; {
		case c == '{' || c == '[':
			if depth+len(stack) == maxNestingDepth {
				return -1
			}
			stack = append(stack, c)
			i = skipSpace(data, i+1)
			if i < len(data) && data[i] == c+2 {
				stack = stack[:len(stack)-1]
				i++
				break
			}
			if c == '{' {
				if i = keyColon(data, i); i < 0 {
					return -1
				}
			}
			continue value
		case c == '"':
			if i = validString(data, i); i < 0 {
				return -1
			}
		default:
			if i = validScalar(data, i, c); i < 0 {
				return -1
			}
		}
		// A value ended at i: close what it ends.
		for {
			if len(stack) == 0 {
				return i
			}
			if i = skipSpace(data, i); i >= len(data) {
				return -1
			}
			top := stack[len(stack)-1]
			switch data[i] {
			case ',':
				i = skipSpace(data, i+1)
				if top == '{' {
					if i = keyColon(data, i); i < 0 {
						return -1
					}
				}
				continue value
			case top + 2:
				stack = stack[:len(stack)-1]
				i++
			default:
				return -1
			}
		}
	}
}

// keyColon validates the member key at data[i] and the colon after it, and
// returns where the member's value starts, or -1.
func keyColon(data []byte, i int) int {
	if i >= len(data) || data[i] != '"' {
		return -1
	}
	if i = validString(data, i); i < 0 {
		return -1
	}
	if i = skipSpace(data, i); i >= len(data) || data[i] != ':' {
		return -1
	}
	return skipSpace(data, i+1)
}
