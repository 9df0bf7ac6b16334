// Package interop holds the credslots interop tests: they run the real Claude
// Code and Codex CLI binaries and proper-lockfile (pinned in package.json,
// installed into interop/node_modules by `make interop`) against the library
// and the credslots command, with every token endpoint faked on 127.0.0.1.
//
// The tests carry the build tag "interop":
//
//	make interop                      # npm ci --prefix interop, then the tests
//	go test -tags interop -count=1 -v ./interop/
//
// Without the tag this package is empty, so `go test ./...` never needs node.
package interop
