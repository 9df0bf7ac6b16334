package disk

import (
	"strings"
	"syscall"
	"unsafe"
)

// atFDCWD is AT_FDCWD, as a variable so that it converts to a uintptr.
var atFDCWD = -0x64

// openRead opens name for reading with readFlags. A name shorter than 512
// bytes is made a C string on the stack, so that the open allocates
// nothing (syscall.Open copies it to the heap); a longer one goes through
// syscall.Open.
func openRead(name string) (int, error) {
	var cname [512]byte
	if len(name) >= len(cname) || strings.IndexByte(name, 0) >= 0 {
		return syscall.Open(name, readFlags, 0)
	}
	copy(cname[:], name)
	r, _, e := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(&cname[0])), uintptr(readFlags), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}
