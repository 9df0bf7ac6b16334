// Package journal is the byte layer of credslots' journal: one JSON object
// a line, appended to a file that only grows until it is rotated.
//
// What it guarantees:
//   - AppendString and AppendTime write what encoding/json would decode
//     back to the same string and instant (the fuzz test holds them to it),
//     without reflection or an allocation of their own.
//   - Append makes a record durable before it returns when asked to (one
//     fsync of the file), goes through the disk.FS seam it is given, and
//     never lets a line torn by a crash swallow the next one: a file that
//     does not end with a newline gets one before the record.
//   - Read never fails on a journal grown past the reader's bound: it reads
//     the newest records, from the first whole line of the tail.
//   - Keep scans lines bytewise: it decodes nothing, and calls its filter
//     only on the lines older than those it keeps anyway.
//
// What it never does: interpret a record (the caller's struct and its
// meaning stay with the caller), follow a symlink at the journal's name,
// log, or hold state between calls. It imports nothing of credslots but
// internal/disk.
package journal
