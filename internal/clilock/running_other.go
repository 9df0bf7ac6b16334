//go:build !linux

package clilock

// Running cannot tell here: ErrNoProcessList.
func Running(map[string]bool) ([]string, error) { return nil, ErrNoProcessList }
