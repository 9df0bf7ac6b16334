//go:build race

package credslots

// raceEnabled reports a -race build, whose instrumentation allocates.
const raceEnabled = true
