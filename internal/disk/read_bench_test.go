//go:build unix

package disk

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// benchFile is a credential-sized file on tmpfs when there is one (the
// reader's own cost shows there, not the disk's).
func benchFile(b *testing.B) string {
	b.Helper()
	base := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "disk-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, ".credentials.json.bench")
	if err := os.WriteFile(path, make([]byte, 470), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkReader is the reader beside the floor of a read, on the same
// file: raw open, read to the end, close (x/sys/unix, a reused buffer).
// The reader makes as many system calls (its fstat, which proves the file
// regular and sizes the read, stands where the floor's second read finds
// the end), and allocates nothing reading into a pooled buffer.
func BenchmarkReader(b *testing.B) {
	path := benchFile(b)
	b.Run("floor_open_read_close", func(b *testing.B) {
		buf := make([]byte, 64<<10)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			for {
				n, err := unix.Read(fd, buf)
				if err != nil {
					b.Fatal(err)
				}
				if n == 0 {
					break
				}
			}
			_ = unix.Close(fd)
		}
	})
	b.Run("ReadRegularInto_pooled", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf := GetBuffer()
			data, err := ReadRegularInto(path, *buf, MaxFileSize)
			if err != nil || len(data) != 470 {
				b.Fatal(err)
			}
			PutBuffer(buf, data)
		}
	})
	b.Run("ReadRegular", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := ReadRegular(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReadRegularMode", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, _, err := ReadRegularMode(path, MaxFileSize); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStatAndReadlink: StatMode and ReadlinkInto beside the raw calls.
func BenchmarkStatAndReadlink(b *testing.B) {
	path := benchFile(b)
	link := path + ".link"
	if err := os.Symlink(filepath.Base(path), link); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4096)
	var st unix.Stat_t
	b.Run("floor_readlink_stat", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := unix.Readlink(link, buf); err != nil {
				b.Fatal(err)
			}
			if err := unix.Stat(link, &st); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReadlinkInto_StatMode", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := ReadlinkInto(link, buf); err != nil {
				b.Fatal(err)
			}
			if _, err := StatMode(link); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("os_Readlink_Stat", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := os.Readlink(link); err != nil {
				b.Fatal(err)
			}
			if _, err := os.Stat(link); err != nil {
				b.Fatal(err)
			}
		}
	})
}
