//go:build floorreport

package credslots

import "golang.org/x/sys/unix"

// fsKind names the file system dir is on, as far as the floor report needs:
// "tmpfs", "ext4", "other", or "" when it cannot tell.
func fsKind(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return ""
	}
	switch int64(st.Type) {
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	}
	return "other"
}
