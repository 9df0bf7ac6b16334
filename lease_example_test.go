//go:build unix

package credslots_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/gptme/credslots"
)

// ExampleManager_Lease runs an agent with a login of its own: the login is
// handed to the agent's seat, the agent inherits the lease's lock, and its
// refresh comes back to the slot when the lease is released.
func ExampleManager_Lease() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	now := time.Now()
	writeCred(filepath.Join(dir, ".credentials.json.bob"), now.Add(8*time.Hour), "rt-bob")
	writeCred(filepath.Join(dir, ".credentials.json.alice"), now.Add(7*time.Hour), "rt-alice")
	m, err := credslots.New(credslots.WithCredsDir(dir), credslots.WithSubscriptions("bob", "alice"))
	if err != nil {
		panic(err)
	}
	seat := filepath.Join(exampleDir(), "agent-1")
	defer os.RemoveAll(filepath.Dir(seat))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := m.Lease(ctx, seat, credslots.LeaseWait())
	if err != nil {
		panic(err)
	}
	fmt.Println("leased", l.Sub())

	// The agent: Claude Code would get CLAUDE_SECURESTORAGE_CONFIG_DIR=seat.
	// This one refreshes its token the way Claude Code writes it.
	cmd := exec.Command("sh", "-c", `printf '{"claudeAiOauth":{"accessToken":"at2","refreshToken":"rt-bob-2","expiresAt":%s}}' "$EXP" > "$SEAT/.tmp" && mv "$SEAT/.tmp" "$SEAT/.credentials.json"`)
	cmd.Env = append(os.Environ(), "SEAT="+seat, fmt.Sprintf("EXP=%d", now.Add(16*time.Hour).UnixMilli()))
	cmd.ExtraFiles = []*os.File{l.File()} // the agent holds the lease too
	if err := cmd.Run(); err != nil {
		panic(err)
	}

	_, err = m.SwitchTo("bob", "home wants it")
	fmt.Println("switch refused:", errors.Is(err, credslots.ErrLeased))
	if err := l.Release(); err != nil {
		panic(err)
	}
	exp, _ := m.SlotExpiry("bob")
	fmt.Println("slot has the refresh:", exp.After(now.Add(15*time.Hour)))
	_, err = os.Stat(filepath.Join(seat, ".credentials.json"))
	fmt.Println("seat cleared:", os.IsNotExist(err))
	// Output:
	// leased bob
	// switch refused: true
	// slot has the refresh: true
	// seat cleared: true
}
