//go:build unix

package disk

import "syscall"

// ONoFollow makes an open fail on a symlink instead of following it.
const ONoFollow = syscall.O_NOFOLLOW
