//go:build !unix

package credslots

// setUmask0277: no umask here.
func setUmask0277() {}
