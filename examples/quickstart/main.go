// Command quickstart is the README's quick-start snippet, kept compiling.
package main

import (
	"errors"
	"log"
	"os"
	"path/filepath"

	"github.com/gptme/credslots"
)

func main() {
	home, _ := os.UserHomeDir()
	m, err := credslots.New(
		credslots.WithCredsDir(filepath.Join(home, ".claude")),
		credslots.WithSubscriptions("bob", "alice", "erik"),
		// Defer automated switches while an agent session is running.
		credslots.WithLockGuard(credslots.GlobLockGuard("/tmp/agent-*.lock")),
	)
	if err != nil {
		log.Fatal(err)
	}

	if drift, err := m.DetectLiveSlotDrift(); err == nil && drift != nil && drift.Drift {
		log.Printf("live credential matches no slot: heal it before rotating")
	}

	res, err := m.SwitchTo("alice", "bob quota exhausted")
	switch {
	case errors.Is(err, credslots.ErrDeferred):
		log.Printf("deferred by %v", res.DeferredLocks)
	case err != nil:
		log.Printf("not switched: %s", res.Reason)
	default:
		log.Print(res.Reason) // "switched to alice"
	}
}
