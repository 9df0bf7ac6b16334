//go:build !unix

package atomicfile

// SyncDir is a no-op where a directory cannot be opened for syncing (Windows
// journals the rename itself).
func SyncDir(string) error { return nil }
