package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// doc is Document's trimmed reading of s, which must be valid.
func doc(t testing.TB, s string) []byte {
	t.Helper()
	d, why := Document([]byte(s))
	require.Empty(t, why, s)
	return d
}

func TestDocument(t *testing.T) {
	cases := []struct {
		name, in, want, why string
	}{
		{"object, spaces trimmed", " \n{\"a\":1}\t ", `{"a":1}`, ""},
		{"a bare string", `"x"`, `"x"`, ""},
		{"empty", "", "", "unreadable or malformed JSON: unexpected end of JSON input"},
		{"cut short", `{"secret-token":`, "", "unreadable or malformed JSON: unexpected end of JSON input"},
		{"syntax error", `{"secret-token" 1}`, "", "unreadable or malformed JSON: syntax error at offset 17"},
		{"two documents", `{} {"secret-token":1}`, "", "unreadable or malformed JSON: trailing data after the document"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, why := Document([]byte(tc.in))
			assert.Equal(t, tc.why, why)
			assert.NotContains(t, why, "secret", "a reason quotes nothing of the document")
			if tc.why == "" {
				assert.Equal(t, tc.want, string(got))
			} else {
				assert.Nil(t, got)
			}
		})
	}
}

func TestFields(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		names []string
		want  []string // raw values, "" for nil
	}{
		{"top-level members", `{"a":"x","b":12,"c":{"d":[1,"}"]}}`, []string{"c", "a", "b"}, []string{`{"d":[1,"}"]}`, `"x"`, "12"}},
		{"missing member", `{"a":1}`, []string{"a", "z"}, []string{"1", ""}},
		{"last duplicate wins", `{"a":1,"a":2}`, []string{"a"}, []string{"2"}},
		{"escaped key matches after unescaping", `{"\u0061":true}`, []string{"a"}, []string{"true"}},
		{"no case folding", `{"A":1}`, []string{"a"}, []string{""}},
		{"nested members are not top-level", `{"o":{"a":1}}`, []string{"a"}, []string{""}},
		{"spaces everywhere", "{ \"a\" : null , \"b\" :\t\"y\" }", []string{"a", "b"}, []string{"null", `"y"`}},
		{"string holding quotes and braces", `{"a":"\"}{","b":1}`, []string{"a", "b"}, []string{`"\"}{"`, "1"}},
		{"not an object", `[1,2]`, []string{"a"}, []string{""}},
		{"escaped backslashes before a closing quote", `{"a\\":"x\\\\","b":"\\\"","c":[1]}`, []string{"a\\", "b", "c"}, []string{`"x\\\\"`, `"\\\""`, "[1]"}},
		{"a long string with a quote past a word", `{"a":"0123456789abcdef\"0123456789","b":2}`, []string{"a", "b"}, []string{`"0123456789abcdef\"0123456789"`, "2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Fields(doc(t, tc.in), tc.names...)
			for i, want := range tc.want {
				if want == "" {
					assert.Nil(t, got[i], tc.names[i])
				} else {
					assert.Equal(t, want, string(got[i]), tc.names[i])
				}
			}
		})
	}
}

func TestStringAndNumber(t *testing.T) {
	strs := []struct {
		raw  string
		want string
		ok   bool
	}{
		{`"plain"`, "plain", true},
		{`"a\nb\u00e9"`, "a\nb\u00e9", true},
		{"\"\xff\"", "\ufffd", true},
		{`""`, "", true},
		{`12`, "", false},
		{`null`, "", false},
		{``, "", false},
	}
	for _, tc := range strs {
		got, ok := String([]byte(tc.raw))
		assert.Equal(t, tc.ok, ok, tc.raw)
		assert.Equal(t, tc.want, got, tc.raw)
		if tc.ok {
			var oracle string
			require.NoError(t, json.Unmarshal([]byte(tc.raw), &oracle))
			assert.Equal(t, oracle, got, "as encoding/json reads %s", tc.raw)
		}
	}
	nums := []struct {
		raw, want string
		ok        bool
	}{
		{"0", "0", true},
		{"-1.5e3", "-1.5e3", true},
		{`"1"`, "", false},
		{"true", "", false},
		{"", "", false},
	}
	for _, tc := range nums {
		got, ok := Number([]byte(tc.raw))
		assert.Equal(t, tc.ok, ok, tc.raw)
		assert.Equal(t, tc.want, got, tc.raw)
	}
}

func TestMembersAndWriteObject(t *testing.T) {
	ms, ok := Members(doc(t, `{ "b" : [1, {"x":"}"}], "a":"1", "b":2, "\u0063":null }`))
	require.True(t, ok)
	var names, values []string
	for _, m := range ms {
		names, values = append(names, m.Name), append(values, string(m.Value))
	}
	assert.Equal(t, []string{"b", "a", "c"}, names, "in order, a duplicate kept where it first came")
	assert.Equal(t, []string{"2", `"1"`, "null"}, values, "the last duplicate's value")
	assert.Equal(t, `"\u0063"`, string(ms[2].Key), "the raw key, as written")
	assert.Equal(t, `{"b":2,"a":"1","\u0063":null}`, string(WriteObject(ms)), "keys and values byte for byte")
	assert.Equal(t, `{}`, string(WriteObject(nil)))

	_, ok = Members(doc(t, `"x"`))
	assert.False(t, ok, "not an object")
	empty, ok := Members(doc(t, `{}`))
	assert.True(t, ok)
	assert.Empty(t, empty)
}

func TestDecimalTime(t *testing.T) {
	cases := []struct {
		num  string
		unit time.Duration
		want time.Time
		ok   bool
	}{
		{"1767225600000", time.Millisecond, time.Unix(1767225600, 0), true},
		{"1767225600", time.Second, time.Unix(1767225600, 0), true},
		{"-1", time.Millisecond, time.Unix(0, -1000000), true},
		{"1767225600000.0000000001", time.Millisecond, time.Unix(1767225600, 1), true},
		{"1.7672256e12", time.Millisecond, time.Unix(1767225600, 0), true},
		{"17672256E+5", time.Millisecond, time.Unix(1767225600, 0), true},
		{"1767225600000.0000015", time.Millisecond, time.Unix(1767225600, 2), true},
		{"-1.5", time.Millisecond, time.Unix(0, -1500000), true},
		{"-0.0000001", time.Millisecond, time.Unix(0, 0), true},
		{"1e-400", time.Millisecond, time.Unix(0, 1), true},
		{"-62135596800000", time.Millisecond, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"253402300799999.999999", time.Millisecond, time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), true},
		{"253402300799.9999999999", time.Second, time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), false},
		{"253402300799999.9999999", time.Millisecond, time.Time{}, false},
		{"-62135596800001", time.Millisecond, time.Time{}, false},
		{"1e23", time.Millisecond, time.Time{}, false},
		{"1e1000000000000", time.Millisecond, time.Time{}, false},
		{"-1e23", time.Millisecond, time.Time{}, false},
	}
	for _, tc := range cases {
		got, ok := DecimalTime(tc.num, tc.unit)
		require.Equal(t, tc.ok, ok, "%s %v: %s", tc.num, tc.unit, got)
		if ok {
			assert.True(t, tc.want.Equal(got), "%s: got %s, want %s", tc.num, got.Format(time.RFC3339Nano), tc.want.UTC().Format(time.RFC3339Nano))
			assert.Equal(t, time.UTC, got.Location(), tc.num)
		}
	}
}

// BenchmarkFields is the read a freshness check makes: one document
// validated, then two members of a nested object found.
func BenchmarkFields(b *testing.B) {
	data := []byte(`{"claudeAiOauth":{"accessToken":"sk-ant-oat01-` + strings.Repeat("a", 80) +
		`","refreshToken":"sk-ant-ort01-` + strings.Repeat("b", 80) +
		`","expiresAt":1767225600000,"scopes":["user:inference","user:profile"],"subscriptionType":"max"}}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d, why := Document(data)
		if why != "" {
			b.Fatal(why)
		}
		inner := Fields(d, "claudeAiOauth")[0]
		f := Fields(inner, "expiresAt", "refreshToken")
		num, ok := Number(f[0])
		if !ok {
			b.Fatal("no expiresAt")
		}
		if _, ok := DecimalTime(num, time.Millisecond); !ok {
			b.Fatal("bad expiresAt")
		}
		if _, ok := String(f[1]); !ok {
			b.Fatal("no refreshToken")
		}
	}
}

// BenchmarkDecimalTime is the conversion of a fractional literal, which
// takes the exact (math/big) path.
func BenchmarkDecimalTime(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, ok := DecimalTime("1767225600000.0000015", time.Millisecond); !ok {
			b.Fatal("out of range")
		}
	}
}

func TestRawTimeRefusesWhatIsNotANumber(t *testing.T) {
	for _, raw := range []string{``, `"1767225600000"`, `null`, `true`, `{}`, `[1]`, `+1`, `.5`} {
		_, isNumber, ok := RawTime([]byte(raw), time.Millisecond)
		assert.False(t, isNumber, "%s", raw)
		assert.False(t, ok, "%s", raw)
	}
	got, isNumber, ok := RawTime([]byte("1767225600000"), time.Millisecond)
	assert.True(t, isNumber && ok)
	assert.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), got)
	_, isNumber, ok = RawTime([]byte("253402300800000"), time.Millisecond)
	assert.True(t, isNumber, "a number")
	assert.False(t, ok, "past the year 9999")
}
