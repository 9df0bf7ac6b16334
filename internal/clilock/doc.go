// Package clilock speaks the lock protocols credslots holds while it changes
// files: its own flock, and the locks the CLIs take around a token refresh,
// taken exactly the way those CLIs take them.
//
//   - Claude Code's lock directories, as its lock library (proper-lockfile)
//     keeps them: mkdir to take one; a directory whose mtime is older than
//     its stale time is abandoned and may be taken over; the holder
//     refreshes the mtime while it holds it; it removes the directory on
//     release only while it is still its own.
//   - Claude Code's owner record (2.1.332 and later) beside its refresh
//     lock: parsed and judged as Claude Code judges it, and written for a
//     held lock only when every field can be produced exactly as Claude
//     Code computes it (the process identity read from /proc, the lock
//     directories' birth times).
//   - Codex CLI's and the package's own flock (LockFile), and the process
//     lookups under them (ProcessExists, Running).
//
// What it guarantees: a lock is never taken over before its stale time
// unless an owner record (or the caller's takeBack proof) shows its holder
// gone; a lock whose owner record names a live process is never taken
// over; a record that is not this process's own is never rewritten or
// removed; a held lock's mtime is refreshed at least every beat (a timer,
// no goroutine, until a change lasts that long); Verify reports, with one
// stat, a lock that is no longer this holder's, however it was lost; Release
// removes only a lock that is still this holder's.
//
// What it never does: take a lock over before its stale time without proof
// that its holder is gone, log, read or write a credential, or make a
// file-system call except through the disk.FS it is given (the reads of
// /proc and /etc/machine-id that identify processes excepted). It imports
// nothing of credslots but internal/disk and internal/journal (whose JSON
// string encoding writes the owner record as encoding/json would).
package clilock
