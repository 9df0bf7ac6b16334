// Package disk is the file-system floor under credslots: the one seam (FS)
// every file operation of the package goes through, its real
// implementation (OS), and the per-platform calls the seam needs.
//
// What it guarantees:
//   - A read (ReadRegular and its variants) never blocks on a FIFO or a
//     device, never follows its caller into reading more than its bound
//     (ErrTooLarge), and refuses anything but a regular file
//     (ErrNotRegular), found by an fstat before anything is read. It makes
//     as many system calls as the floor of a read (open, read to the end,
//     close): its fstat stands where the floor's last read finds the end.
//   - A read into a caller's buffer (ReadRegularInto, FS.ReadFileInto)
//     allocates nothing when the file fits; buffers from GetBuffer are
//     cleared by PutBuffer before they go back to the pool, so no file's
//     bytes linger there.
//   - Exchange and RenameNoReplace are the kernel's atomic renames where the
//     platform has them, and ErrExchangeUnsupported where it does not: they
//     never fall back to a racy emulation themselves.
//   - Append, AppendRecord, OpenRecord, CreateNew, Chmod and the lock files
//     never follow a symlink at the final name, and what they create is mode
//     0600. CreateNew never opens a name that exists (O_EXCL).
//   - On Unix the reads, the record appends, the flock and CreateNew are
//     made with golang.org/x/sys/unix directly: an *os.File would add
//     os.OpenFile's fcntl calls and epoll registration to each. Only what
//     needs an *os.File (the atomic writer's temporary file, a lease's
//     inherited lock) gets one.
//
// What it never does: interpret what it reads, log, or keep state between
// calls. It imports nothing of credslots but internal/atomicfile's types.
package disk
