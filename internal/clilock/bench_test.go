//go:build unix

package clilock

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"golang.org/x/sys/unix"
)

// BenchmarkLockDirs takes and releases three lock directories, as a switch
// with Claude Code's locks does, against its floor: a mkdir and an rmdir
// each.
func BenchmarkLockDirs(b *testing.B) {
	dir := b.TempDir()
	names := []string{".oauth_refresh.lock", "legacy.lock", ".storage-write.lock"}
	b.Run("clilock", func(b *testing.B) {
		b.ReportAllocs()
		held := make([]*Dir, len(names))
		for i := 0; i < b.N; i++ {
			start := time.Now()
			for j, n := range names {
				s := Spec{Path: filepath.Join(dir, n), Name: n, Stale: time.Minute, Beat: 5 * time.Second}
				d, _, err := Take(context.Background(), disk.OS{}, s, start, start.Add(time.Second), nil)
				if err != nil {
					b.Fatal(err)
				}
				held[j] = d
			}
			for j := len(held) - 1; j >= 0; j-- {
				if err := held[j].Verify(); err != nil {
					b.Fatal(err)
				}
				held[j].Release()
			}
		}
	})
	b.Run("floor", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			for _, n := range names {
				if err := unix.Mkdir(filepath.Join(dir, n), 0o700); err != nil {
					b.Fatal(err)
				}
			}
			for j := len(names) - 1; j >= 0; j-- {
				if err := unix.Rmdir(filepath.Join(dir, names[j])); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
