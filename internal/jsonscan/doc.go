// Package jsonscan reads the few members a credential format needs straight
// from the JSON text, and converts JSON numbers of seconds or milliseconds
// since the epoch to times exactly.
//
// What it guarantees:
//
//   - A document is validated once, by [Document] or [Lookup] ([Valid]:
//     exactly encoding/json's grammar and nesting bound, in one pass that
//     allocates nothing, several times faster than encoding/json; the fuzz
//     tests hold it to encoding/json). [Lookup] finds a credential's
//     members during that same pass. After it the scanners only walk the
//     bytes, building no generic map, and return sub-slices of the input,
//     never copies, so a caller can rewrite one member in place
//     ([Members], [WriteObject]) and leave every other byte as it was.
//   - Members are read as encoding/json reads them: the last of duplicate
//     names wins, a key matches only exactly after unescaping, and invalid
//     UTF-8 in a string becomes U+FFFD.
//   - [DecimalTime] (and [RawTime], the same for a raw value read where it
//     lies) never rounds through a float: a fraction finer than a
//     nanosecond rounds up, so that comparing with a whole-nanosecond time is
//     exact; values outside the years 1 to 9999 are refused.
//   - Why a document is not JSON ([Document]'s reason) is said without
//     quoting any of it, not even the one character a syntax error names.
//
// What it never does: touch a file, log, decode a document into a generic
// map, or put any of the text it scans into a reason or an error (the text
// is a credential). The scanners ([Fields], [Members], [String], [Number])
// assume a document [Document] accepted; on any other input what they return
// is unspecified. The package imports nothing of credslots.
package jsonscan
