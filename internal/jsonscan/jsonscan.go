package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// scanValue returns the end of the JSON value starting at data[i], which is
// part of a document Valid accepted.
func scanValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return scanString(data, i)
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				i = scanString(data, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	default: // a number, true, false or null
		for ; i < len(data); i++ {
			switch data[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
		}
		return i
	}
}

// scanString returns the end of the string starting at data[i] (a quote),
// in a document Valid accepted: the first quote not escaped, found with
// bytes.IndexByte. A quote is escaped when an odd run of backslashes ends
// just before it (in a valid string a backslash always starts an escape).
func scanString(data []byte, i int) int {
	for i++; ; {
		q := bytes.IndexByte(data[i:], '"')
		if q < 0 {
			return len(data)
		}
		q += i
		bs := 0
		for k := q - 1; k >= i && data[k] == '\\'; k-- {
			bs++
		}
		if bs%2 == 0 {
			return q + 1
		}
		i = q + 1
	}
}

// skipSpace returns the first index at or after i that is not JSON space.
func skipSpace(data []byte, i int) int {
	// No byte past the space is JSON space: in a compact document, the
	// common case, one comparison.
	for i < len(data) && data[i] <= ' ' && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n') {
		i++
	}
	return i
}

// Fields returns the raw values of the members named in names (at most
// four) of the JSON object obj, a document [Document] accepted: nil for a
// missing member, and for all when obj is not an object. As encoding/json
// does, the last of duplicate members wins, and a key matches only exactly
// (after unescaping).
func Fields(obj []byte, names ...string) [4][]byte {
	var vals [4][]byte
	if len(obj) == 0 || obj[0] != '{' {
		return vals
	}
	// A name in valid UTF-8 without a backslash matches a key's raw bytes
	// exactly when it matches the key decoded; any other key is decoded.
	var simple [4]bool
	for n, name := range names {
		simple[n] = strings.IndexByte(name, '\\') < 0 && utf8.ValidString(name)
	}
	i := skipSpace(obj, 1)
	for i < len(obj) && obj[i] == '"' {
		keyEnd := scanString(obj, i)
		key := obj[i:keyEnd]
		i = skipSpace(obj, skipSpace(obj, keyEnd)+1) // past the colon
		valEnd := scanValue(obj, i)
		inner := key[1 : len(key)-1]
		for n, name := range names {
			if simple[n] && string(inner) == name {
				vals[n] = obj[i:valEnd]
			}
		}
		if !plainKey(inner) {
			var decoded string
			if json.Unmarshal(key, &decoded) == nil {
				for n, name := range names {
					if decoded == name {
						vals[n] = obj[i:valEnd]
					}
				}
			}
		}
		i = skipSpace(obj, valEnd)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return vals
}

// plainKey reports whether a raw key's inner bytes are the key decoded: no
// escape, valid UTF-8.
func plainKey(inner []byte) bool {
	for _, c := range inner {
		if c == '\\' || c >= utf8.RuneSelf {
			return bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner)
		}
	}
	return true
}

// String decodes a raw JSON value that is a string, as encoding/json
// would (invalid UTF-8 becomes U+FFFD).
func String(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	return s, json.Unmarshal(raw, &s) == nil
}

// Number returns the literal text of a raw JSON value that is a number.
func Number(raw []byte) (string, bool) {
	if len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return "", false
	}
	return string(raw), true
}

// Document trims data to its one JSON value, or returns why it is not one
// JSON document ("unreadable or malformed JSON: " and the detail), in words
// that quote nothing of data. It validates data once, with [Valid]; only a
// document it refuses is read again (by encoding/json) to say why.
func Document(data []byte) ([]byte, string) {
	if !Valid(data) {
		return nil, "unreadable or malformed JSON: " + invalidDetail(data)
	}
	return bytes.TrimSpace(data), ""
}

// Member is one member of a JSON object: its raw key (quotes included), its
// decoded name, and its raw value.
type Member struct {
	Key   []byte // the raw key, quotes included
	Name  string // the key, decoded
	Value []byte // the raw value
}

// Members lists the members of the JSON object obj (a document
// [Document] accepted, trimmed), in order, keeping only the last of
// duplicate names, as encoding/json would read them. It returns false when
// obj is not an object.
func Members(obj []byte) ([]Member, bool) {
	if len(obj) == 0 || obj[0] != '{' {
		return nil, false
	}
	var out []Member
	at := map[string]int{}
	i := skipSpace(obj, 1)
	for i < len(obj) && obj[i] == '"' {
		keyEnd := scanString(obj, i)
		key := obj[i:keyEnd]
		name, _ := String(key)
		i = skipSpace(obj, skipSpace(obj, keyEnd)+1)
		valEnd := scanValue(obj, i)
		m := Member{Key: key, Name: name, Value: obj[i:valEnd]}
		if n, dup := at[name]; dup {
			out[n] = m
		} else {
			at[name] = len(out)
			out = append(out, m)
		}
		i = skipSpace(obj, valEnd)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return out, true
}

// WriteObject renders members as one compact JSON object, each key and value
// byte for byte as given.
func WriteObject(members []Member) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for n, m := range members {
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(m.Key)
		b.WriteByte(':')
		b.Write(m.Value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// invalidDetail describes why data is not one JSON document, without
// quoting it, not even the one offending character a syntax error names.
func invalidDetail(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return "syntax error at offset " + strconv.FormatInt(se.Offset, 10)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return "unexpected end of JSON input"
		}
		return "not a valid JSON document"
	}
	return "trailing data after the document"
}
