//go:build unix && !linux && floorreport

package credslots

// fsKind cannot tell the file system here: the report's real-disk row then
// needs CREDSLOTS_BENCH_DISK.
func fsKind(string) string { return "" }
