// Package swap replaces a path by a symlink with a compare-and-swap, so
// that a concurrent writer's newer file at that path is never destroyed,
// and inspects what a path holds (Inspect, Entry) for the checks that
// decide whether it may be replaced.
//
// What it guarantees:
//   - Readers of the path see the old entry or the new symlink, never
//     nothing: the symlink is made under a temporary name beside the path
//     and renamed (exchanged, where the kernel can) over it.
//   - A regular file at the path is replaced only while it holds exactly
//     the content the caller validated (its sha256); a symlink holds no
//     data and may always go. Otherwise the path is left holding the newer
//     entry and the error wraps ErrChanged.
//   - An error met after the path already changed (the directory sync, or
//     a swap back that failed) is an *AfterChange, so that the caller
//     records the change as made.
//   - Every file operation goes through the disk.FS seam it is given.
//
// What it never does: delete a regular file it has not verified, emulate
// an atomic exchange the platform lacks (it re-checks and renames, the
// documented fallback), log, or import anything of credslots but
// internal/disk.
package swap
