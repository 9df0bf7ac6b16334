// Package readmemo remembers what was computed from a file's bytes, for the
// next read of that file that finds the same bytes: a [Cell] holds one
// answer beside the [Key] of the bytes it came from, and gives it back only
// for bytes of the same key.
//
// What it guarantees:
//   - A key is 128 bits of two keyed hashes of the bytes (hash/maphash,
//     each with its own seed drawn at random when the process starts and
//     never shown): two different byte strings not made to collide share
//     a key with a chance of about 2^-128. maphash is not a cryptographic
//     hash: bytes crafted to collide under any seed would be answered as
//     the other bytes were, which only a writer of the file could do, who
//     can put any answer in it anyway.
//   - A Cell is safe for concurrent use: an answer is replaced whole, so a
//     reader sees an old answer with its old key or a new one with its
//     new key, never a mix.
//   - Give back and remember allocate nothing but the remembered entry.
//
// What it never does: keep, copy or return the bytes themselves (a key
// says nothing of them, and never leaves the process), touch a file, or
// import anything of credslots.
package readmemo

import (
	"hash/maphash"
	"sync/atomic"
)

// seeds key every Key of the process.
var seedA, seedB = maphash.MakeSeed(), maphash.MakeSeed()

// Key stands for a byte string: see the package's guarantees.
type Key struct{ a, b uint64 }

// KeyOf is the key of data.
func KeyOf(data []byte) Key {
	return Key{maphash.Bytes(seedA, data), maphash.Bytes(seedB, data)}
}

// Cell remembers one answer of type V and the key of the bytes it was
// computed from. The zero Cell remembers nothing.
type Cell[V any] struct {
	p atomic.Pointer[entry[V]]
}

type entry[V any] struct {
	k Key
	v V
}

// Get returns the answer remembered for bytes of key k; false when the
// cell remembers nothing or an answer for other bytes.
func (c *Cell[V]) Get(k Key) (V, bool) {
	if e := c.p.Load(); e != nil && e.k == k {
		return e.v, true
	}
	var zero V
	return zero, false
}

// Put remembers v as the answer for bytes of key k, in place of what the
// cell held.
func (c *Cell[V]) Put(k Key, v V) {
	c.p.Store(&entry[V]{k: k, v: v})
}
