//go:build !unix

package disk

// ONoFollow is not available here; the package's own files are opened by name.
const ONoFollow = 0
