//go:build unix

package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A switch refused over a drifted live file names a heal that works: the
// live file is the active sub's, never the switch's target's.
func TestASwitchRefusedOverDriftNamesNoHealIntoItsTarget(t *testing.T) {
	dir := credsDir(t, testNow)
	require.Equal(t, 0, run("--dir", dir, "switch", "bob").code)
	claudeRefresh(t, dir, cred(testNow.Add(9*time.Hour), "rt-bob-2"))
	r := run("--dir", dir, "switch", "erik")
	require.Equal(t, 1, r.code, "stdout %q stderr %q", r.stdout, r.stderr)
	assert.NotContains(t, r.stderr, "credslots heal erik")
	assert.Contains(t, r.stderr, "credslots heal --auto")
	heal := run("--dir", dir, "heal", "--auto")
	require.Equal(t, 0, heal.code, heal.stderr)
}
