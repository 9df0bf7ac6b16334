package readmemo

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestKeyOf(t *testing.T) {
	a := []byte(`{"claudeAiOauth":{"refreshToken":"rt-a"}}`)
	assert.Equal(t, KeyOf(a), KeyOf(append([]byte(nil), a...)), "the same bytes, wherever they lie")
	b := append([]byte(nil), a...)
	b[len(b)-4] ^= 1 // one bit
	assert.NotEqual(t, KeyOf(a), KeyOf(b))
	assert.NotEqual(t, KeyOf(a), KeyOf(a[:len(a)-1]), "a prefix")
	assert.NotEqual(t, KeyOf(nil), KeyOf([]byte{0}))
	assert.Equal(t, KeyOf(nil), KeyOf([]byte{}))
	// The two halves are independent hashes, not one repeated.
	k := KeyOf(a)
	assert.NotEqual(t, k.a, k.b)
}

// TestKeysOfManyDocuments: distinct documents of one shape (the case a
// memo of credential files meets) never share a key.
func TestKeysOfManyDocuments(t *testing.T) {
	seen := map[Key]string{}
	for i := 0; i < 100000; i++ {
		doc := fmt.Sprintf(`{"claudeAiOauth":{"accessToken":"at-%d","refreshToken":"rt-%d","expiresAt":%d}}`, i, i, 1767225600000+i)
		k := KeyOf([]byte(doc))
		if other, dup := seen[k]; dup {
			t.Fatalf("%s and %s share a key", doc, other)
		}
		seen[k] = doc
	}
}

func TestCell(t *testing.T) {
	var c Cell[string]
	ka, kb := KeyOf([]byte("a")), KeyOf([]byte("b"))
	_, ok := c.Get(ka)
	assert.False(t, ok, "the zero cell remembers nothing")
	c.Put(ka, "answer a")
	v, ok := c.Get(ka)
	assert.True(t, ok)
	assert.Equal(t, "answer a", v)
	_, ok = c.Get(kb)
	assert.False(t, ok, "other bytes get nothing")
	c.Put(kb, "answer b")
	_, ok = c.Get(ka)
	assert.False(t, ok, "the cell holds one answer: the last")
	v, _ = c.Get(kb)
	assert.Equal(t, "answer b", v)
}

// TestCellConcurrent: readers racing writers only ever see an answer with
// the key it was put with (run under the race detector in CI).
func TestCellConcurrent(t *testing.T) {
	var c Cell[[2]int]
	keys := []Key{KeyOf([]byte("0")), KeyOf([]byte("1")), KeyOf([]byte("2"))}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				n := (i + w) % len(keys)
				c.Put(keys[n], [2]int{n, n})
				for m, k := range keys {
					if v, ok := c.Get(k); ok && (v[0] != m || v[1] != m) {
						t.Errorf("key %d gave %v", m, v)
						return
					}
				}
			}
		}(w)
	}
	wg.Wait()
}

func TestGetAllocatesNothing(t *testing.T) {
	var c Cell[string]
	data := []byte(`{"claudeAiOauth":{"refreshToken":"rt-a"}}`)
	c.Put(KeyOf(data), "fp")
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		if _, ok := c.Get(KeyOf(data)); !ok {
			t.Fatal("miss")
		}
	}))
}

func BenchmarkKeyOf(b *testing.B) {
	data := make([]byte, 470)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		_ = KeyOf(data)
	}
}
