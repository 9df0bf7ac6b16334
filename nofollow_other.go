//go:build !unix

package credslots

// oNoFollow is not available here; the package's own files are opened by name.
const oNoFollow = 0
