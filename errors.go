package credslots

import "errors"

// Sentinel errors. Every refusal and failure the package returns wraps exactly
// one of them (or an underlying I/O error), so callers branch with errors.Is.
var (
	// ErrInvalidConfig: New was given an unusable configuration.
	ErrInvalidConfig = errors.New("invalid config")
	// ErrUnknownSubscription: the sub is not one of the configured subscriptions.
	ErrUnknownSubscription = errors.New("unknown subscription")
	// ErrDeferred: the lock guard reported busy-signals; retry later or use Force.
	ErrDeferred = errors.New("deferred by active locks")
	// ErrSlotMissing: the target slot file does not exist.
	ErrSlotMissing = errors.New("slot missing")
	// ErrNotFresh: the token is expired, within the grace period, or its expiry is unknown.
	ErrNotFresh = errors.New("credential not fresh")
	// ErrNoDrift: HealDriftTo found the live path matching a slot (or absent).
	ErrNoDrift = errors.New("no drift")
	// ErrUnhealable: the live path cannot be healed into a slot.
	ErrUnhealable = errors.New("unhealable drift")
	// ErrIdentityDrift: the target slot's refresh-token fingerprint changed since it was captured.
	ErrIdentityDrift = errors.New("slot identity drift")
	// ErrLiveDrifted: the live path is a regular file that matches no slot.
	ErrLiveDrifted = errors.New("live file drifted")
	// ErrLiveChanged: the live path changed while a switch or heal was in progress.
	ErrLiveChanged = errors.New("live path changed concurrently")
	// ErrLockTimeout: another mutation held the manager's lock for longer than the lock timeout.
	ErrLockTimeout = errors.New("lock timeout")
	// ErrLockLost: another process took over a CLI lock the change held, so
	// the change was abandoned before the live path changed.
	ErrLockLost = errors.New("lock lost")
	// ErrAmbiguous: the journal cannot tell which sub the drifted live file
	// belongs to; name the sub explicitly.
	ErrAmbiguous = errors.New("ambiguous: cannot tell whose token is live")
	// ErrTooLarge: a file is larger than the package ever reads (1 MiB).
	ErrTooLarge = errors.New("file too large")
)
