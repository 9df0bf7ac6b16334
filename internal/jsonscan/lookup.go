package jsonscan

import (
	"bytes"
	"encoding/json"
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
	l := lookup{outer: outer, n: len(names)}
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
	n     int // how many names

	outerVal []byte
	vals     [4][]byte

	// The member values being walked whose bytes are wanted: at depth 1
	// (a member of the root object) and at the depth names live in.
	p1, p2         bool
	p1Start        int
	p2Start        int
	p1Mask, p2Mask uint8 // which names a pending value answers
	inOuter        bool  // the depth-1 member being walked is outer
}

// nameDepth is the depth of the object whose members names are.
func (l *lookup) nameDepth() int {
	if l.outer == "" {
		return 1
	}
	return 2
}

// decodeKey decodes a raw key with an escape or a byte past ASCII, as
// encoding/json does.
func decodeKey(raw []byte) (string, bool) {
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err == nil
}

// member notes the key of a member of an object at depth (the root object
// is depth 1) whose value starts at start. raw is the key, quotes included;
// plain says that its inner bytes are the key decoded (plain ASCII, no
// escape), so that it compares byte for byte.
func (l *lookup) member(raw []byte, plain bool, depth, start int, names []string) {
	inner := raw[1 : len(raw)-1]
	if depth == 1 && l.outer != "" {
		if plain {
			l.inOuter = string(inner) == l.outer
		} else {
			decoded, ok := decodeKey(raw)
			l.inOuter = ok && decoded == l.outer
		}
		if l.inOuter {
			// The last of duplicate members wins: forget what an
			// earlier one held.
			l.vals = [4][]byte{}
			l.p1, l.p1Start = true, start
		}
		return
	}
	if depth != l.nameDepth() || depth == 2 && !l.inOuter {
		return
	}
	var mask uint8
	if plain {
		for n, name := range names {
			if len(name) == len(inner) && string(inner) == name {
				mask |= 1 << n
			}
		}
	} else if decoded, ok := decodeKey(raw); ok {
		for n, name := range names {
			if decoded == name {
				mask |= 1 << n
			}
		}
	}
	if mask == 0 {
		return
	}
	if depth == 1 {
		l.p1, l.p1Start, l.p1Mask = true, start, mask
	} else {
		l.p2, l.p2Start, l.p2Mask = true, start, mask
	}
}

// done notes that the value of a member of an object at depth ended at end.
func (l *lookup) done(data []byte, depth, end int) {
	switch {
	case depth == 1 && l.p1:
		l.p1 = false
		if l.outer != "" {
			l.outerVal = data[l.p1Start:end]
			l.inOuter = false
			return
		}
		l.set(l.p1Mask, data[l.p1Start:end])
	case depth == 2 && l.p2:
		l.p2 = false
		l.set(l.p2Mask, data[l.p2Start:end])
	}
}

func (l *lookup) set(mask uint8, v []byte) {
	for n := 0; n < l.n; n++ {
		if mask&(1<<n) != 0 {
			l.vals[n] = v
		}
	}
}

// key validates the member key at data[i] in an object at depth and
// returns where its value starts, or -1.
func (l *lookup) key(data []byte, i, depth int, names []string) int {
	if i >= len(data) || data[i] != '"' {
		return -1
	}
	end, plain := validKeyString(data, i)
	if end < 0 {
		return -1
	}
	colon := skipSpace(data, end)
	if colon >= len(data) || data[colon] != ':' {
		return -1
	}
	v := skipSpace(data, colon+1)
	if depth <= 2 && (len(names) > 0 || l.outer != "") {
		l.member(data[i:end], plain, depth, v, names)
	}
	return v
}

// run validates data as one JSON document (Valid is run asking for
// nothing), with two hooks for what Lookup asks: member at each key of an
// object, done at the end of each value that belongs to an object member.
func (l *lookup) run(data []byte, names []string) bool {
	var stackBuf [64]byte
	stack := stackBuf[:0]
	i := skipSpace(data, 0)
value:
	for {
		if i >= len(data) {
			return false
		}
		switch c := data[i]; {
		case c == '{' || c == '[':
			if len(stack) == maxNestingDepth {
				return false
			}
			stack = append(stack, c)
			i = skipSpace(data, i+1)
			if i < len(data) && data[i] == c+2 {
				stack = stack[:len(stack)-1]
				i++
				break
			}
			if c == '{' {
				if i = l.key(data, i, len(stack), names); i < 0 {
					return false
				}
			}
			continue value
		default:
			if i = validScalar(data, i, c); i < 0 {
				return false
			}
		}
		// A value ended at i: when it is an object member's, say so.
		if (l.p1 || l.p2) && len(stack) > 0 && len(stack) <= 2 && stack[len(stack)-1] == '{' {
			l.done(data, len(stack), i)
		}
		for {
			i = skipSpace(data, i)
			if len(stack) == 0 {
				return i == len(data)
			}
			if i >= len(data) {
				return false
			}
			top := stack[len(stack)-1]
			switch data[i] {
			case ',':
				i = skipSpace(data, i+1)
				if top == '{' {
					if i = l.key(data, i, len(stack), names); i < 0 {
						return false
					}
				}
				continue value
			case top + 2:
				stack = stack[:len(stack)-1]
				i++
				if (l.p1 || l.p2) && len(stack) > 0 && len(stack) <= 2 && stack[len(stack)-1] == '{' {
					l.done(data, len(stack), i)
				}
			default:
				return false
			}
		}
	}
}
