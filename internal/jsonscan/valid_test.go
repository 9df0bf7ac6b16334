package jsonscan

import (
	"encoding/json"
	"math/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validCases are documents at the edges of the grammar, each with
// encoding/json's verdict; FuzzValid seeds from them.
var validCases = []struct {
	doc   string
	valid bool
}{
	{``, false}, {` `, false}, {`{}`, true}, {` {} `, true}, {"\t\r\n[]\n", true}, {`[`, false}, {`]`, false},
	{`{"a":1}`, true}, {`{"a":1,}`, false}, {`{,}`, false}, {`{"a"}`, false}, {`{"a" : 1 , "b" : [ ] }`, true},
	{`{1:2}`, false}, {`{"a":1 "b":2}`, false}, {`[1,2,]`, false}, {`[,]`, false}, {`[1 2]`, false},
	{`[1,[2,{"x":[null]}]]`, true}, {`{"a":{}}}`, false}, {`[}`, false}, {`{]`, false}, {`{"a":]`, false},
	{`0`, true}, {`-0`, true}, {`01`, false}, {`-`, false}, {`-a`, false}, {`1.`, false}, {`1.5`, true},
	{`.5`, false}, {`1e`, false}, {`1e+`, false}, {`1E-7`, true}, {`1e+07`, true}, {`+1`, false},
	{`1767225600000.25`, true}, {`0x10`, false}, {`1.5e3.2`, false}, {`--1`, false}, {`-01`, false},
	{`true`, true}, {`false`, true}, {`null`, true}, {`tru`, false}, {`truex`, false}, {`nul`, false},
	{`[true,false,null]`, true}, {`[truefalse]`, false}, {`True`, false}, {`NaN`, false},
	{`""`, true}, {`"`, false}, {`"a`, false}, {`"\"`, false}, {`"\\"`, true}, {`"\/\b\f\n\r\t"`, true},
	{`"\u00e9"`, true}, {`"\u00G9"`, false}, {`"\u00e"`, false}, {`"\x"`, false}, {`"\` + "\n" + `"`, false},
	{"\"a\tb\"", false}, {"\"a\x00b\"", false}, {"\"a\x7fb\"", true}, {"\"\xff\xfe\"", true}, {"\"é\"", true},
	{`{"a":1}{}`, false}, {`{} x`, false}, {"{}\x00", false}, {`"a" "b"`, false}, {`1 2`, false},
	{"\xef\xbb\xbf{}", false}, {"\u00a0{}", false}, {"\f{}", false}, {`{"a":1}` + "\n", true},
}

func TestValid(t *testing.T) {
	for _, tc := range validCases {
		assert.Equal(t, tc.valid, json.Valid([]byte(tc.doc)), "the table agrees with encoding/json: %q", tc.doc)
		assert.Equal(t, tc.valid, Valid([]byte(tc.doc)), "%q", tc.doc)
	}
}

func TestValidDepth(t *testing.T) {
	for _, tc := range []struct {
		name  string
		depth int
	}{{"within the stack buffer", 64}, {"past it", 65}, {"at encoding/json's bound", maxNestingDepth}, {"past it", maxNestingDepth + 1}} {
		for _, open := range []string{"[", `{"a":`} {
			closer := map[string]string{"[": "]", `{"a":`: "}"}[open]
			doc := []byte(strings.Repeat(open, tc.depth) + "1" + strings.Repeat(closer, tc.depth))
			assert.Equal(t, json.Valid(doc), Valid(doc), "%s: %d deep, %s", tc.name, tc.depth, open)
			assert.Equal(t, tc.depth <= maxNestingDepth, Valid(doc), "%s: %d deep", tc.name, tc.depth)
		}
	}
}

// TestLookupDepth: the members Lookup walks (the root object, the outer
// object in it) count toward the nesting bound as any other object does.
func TestLookupDepth(t *testing.T) {
	for _, depth := range []int{3, 64, 65, 66, maxNestingDepth, maxNestingDepth + 1} {
		inner := depth - 2 // within the root and the outer object
		doc := []byte(`{"claudeAiOauth":{"expiresAt":` + strings.Repeat("[", inner) + "1" + strings.Repeat("]", inner) + `}}`)
		require.Equal(t, depth <= maxNestingDepth, json.Valid(doc), "%d deep", depth)
		_, vals, problem := Lookup(doc, "claudeAiOauth", "expiresAt")
		assert.Equal(t, depth <= maxNestingDepth, problem == "", "%d deep, in the outer object", depth)
		if problem == "" {
			assert.Len(t, vals[0], 2*inner+1)
		}
		_, _, problem = Lookup(doc, "", "claudeAiOauth")
		assert.Equal(t, depth <= maxNestingDepth, problem == "", "%d deep, in the root object", depth)
		_, _, problem = Lookup(doc, "other", "x")
		assert.Equal(t, depth <= maxNestingDepth, problem == "", "%d deep, outside the outer object", depth)
	}
}

func TestValidAllocatesNothing(t *testing.T) {
	doc := []byte(claudeBenchDoc)
	assert.Zero(t, testing.AllocsPerRun(20, func() { Valid(doc) }))
}

// claudeBenchDoc is a Claude Code credential of the usual size.
const claudeBenchDoc = `{"claudeAiOauth":{"accessToken":"sk-ant-oat01-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst-AAAAAAAA","refreshToken":"sk-ant-ort01-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst-AAAAAAAA","expiresAt":1767225600000,"scopes":["user:inference","user:profile","user:sessions:claude_code"],"subscriptionType":"max","rateLimitTier":"default_claude_max_20x"}}`

func BenchmarkValid(b *testing.B) {
	doc := []byte(claudeBenchDoc)
	b.Run("jsonscan", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if !Valid(doc) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if !json.Valid(doc) {
				b.Fatal("invalid")
			}
		}
	})
}

func TestLookupAllocatesNothing(t *testing.T) {
	doc := []byte(claudeBenchDoc)
	assert.Zero(t, testing.AllocsPerRun(20, func() { Lookup(doc, "claudeAiOauth", "accessToken", "refreshToken", "expiresAt") }))
}

// BenchmarkLookup: a Claude Code credential's three fields in one pass,
// beside Document and two Fields calls.
func BenchmarkLookup(b *testing.B) {
	doc := []byte(claudeBenchDoc)
	b.Run("Lookup", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			Lookup(doc, "claudeAiOauth", "accessToken", "refreshToken", "expiresAt")
		}
	})
	b.Run("Document_Fields", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			root, _ := Document(doc)
			Fields(Fields(root, "claudeAiOauth")[0], "accessToken", "refreshToken", "expiresAt")
		}
	})
}

// TestNextSpecial holds the word-at-a-time search to a byte loop, on words
// of the bytes next to each boundary (a borrow from a special byte must
// not move the answer) at every length and offset.
func TestNextSpecial(t *testing.T) {
	interesting := []byte{0x00, 0x1f, 0x20, 0x21, '"', '#', '\\', ']', 0x7f, 0x80, 0xc3, 0xff, 'a'}
	slow := func(data []byte, i int) int {
		for i < len(data) && strPlain(data[i]) {
			i++
		}
		return i
	}
	rng := rand.New(rand.NewSource(1))
	for n := 0; n < 200000; n++ {
		data := make([]byte, rng.Intn(20))
		for k := range data {
			data[k] = interesting[rng.Intn(len(interesting))]
		}
		for i := 0; i <= len(data); i++ {
			if got, want := nextSpecial(data, i), slow(data, i); got != want {
				t.Fatalf("nextSpecial(%q, %d) = %d, want %d", data, i, got, want)
			}
		}
	}
}

func TestValidKeyStringEscaped(t *testing.T) {
	for _, tc := range []struct {
		key     string
		escaped bool
	}{
		{`"expiresAt"`, false}, {`"a"`, false}, {`""`, false}, {`"refresh_token_sha256"`, false}, {`"é"`, false},
		{"\"abcdefghijklmno\xff\"", false}, {`"expires\u0041t"`, true}, {`"\u0061"`, true}, {`"a\"b"`, true}, {`"abcdefgh\/"`, true},
	} {
		end, escaped := validKeyString([]byte(tc.key+":1"), 0)
		assert.Equal(t, len(tc.key), end, "%s", tc.key)
		assert.Equal(t, tc.escaped, escaped, "%s", tc.key)
	}
}

// TestLookupKeysPastASCII: a key past ASCII, or of invalid UTF-8 (which
// encoding/json reads as U+FFFD), matches a name as encoding/json decodes
// it, whether the names are ASCII or not.
func TestLookupKeysPastASCII(t *testing.T) {
	doc := []byte("{\"caf\u00e9\":1,\"a\xff\":2,\"plain\":3,\"caf\xc3\xa9x\":4}")
	require.True(t, json.Valid(doc))
	_, v, problem := Lookup(doc, "", "café", "a\uFFFD", "plain", "a\xff")
	require.Empty(t, problem)
	assert.Equal(t, "1", string(v[0]), "an escape decoded")
	assert.Equal(t, "2", string(v[1]), "invalid UTF-8 read as U+FFFD")
	assert.Equal(t, "3", string(v[2]))
	assert.Nil(t, v[3], "a name of invalid UTF-8 matches no decoded key")
	_, v, _ = Lookup(doc, "", "plain", "a\xff", "cafe")
	assert.Equal(t, "3", string(v[0]))
	assert.Nil(t, v[1], "a name of invalid UTF-8 matches no decoded key")
	assert.Nil(t, v[2])
	_, v, _ = Lookup(doc, "", "caféx")
	assert.Equal(t, "4", string(v[0]), "valid UTF-8 past ASCII compares as it is")
}
