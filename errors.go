package credslots

import (
	"errors"

	"github.com/gptme/credslots/internal/clilock"
	"github.com/gptme/credslots/internal/disk"
)

// Sentinel errors. Every refusal and failure the package returns wraps exactly
// one of them (or an underlying I/O error), so callers branch with
// [errors.Is].
var (
	// ErrInvalidConfig indicates that [New] was given an unusable
	// configuration; the message names the problem.
	ErrInvalidConfig = errors.New("invalid config")
	// ErrUnknownSubscription indicates that a sub is not one of the
	// configured subscriptions.
	ErrUnknownSubscription = errors.New("unknown subscription")
	// ErrDeferred indicates that the lock guard reported busy-signals, or
	// (for a heal) that a login's writes may not have settled yet; retry
	// later, or use [Force].
	ErrDeferred = errors.New("deferred by active locks")
	// ErrSlotMissing indicates that the target slot file does not exist.
	ErrSlotMissing = errors.New("slot missing")
	// ErrNotFresh indicates that a token is expired, within the grace
	// period, or has no readable expiry. [Force] never overrides it.
	ErrNotFresh = errors.New("credential not fresh")
	// ErrNoDrift indicates that [Manager.HealDriftTo] found the live path
	// matching a slot, or no live path at all.
	ErrNoDrift = errors.New("no drift")
	// ErrUnhealable indicates that the live path cannot be healed into a
	// slot, or that a backup is not a credential.
	ErrUnhealable = errors.New("unhealable drift")
	// ErrIdentityDrift indicates that a login's identity is not the one
	// captured for the slot: the slot's refresh-token fingerprint changed
	// since it was captured, or a live file or backup holds another slot's
	// login.
	ErrIdentityDrift = errors.New("slot identity drift")
	// ErrNewLogin indicates that the login at the live path is a new one,
	// of an account no configured sub remembers: .claude.json shows another
	// account than the target slot's, or, for a format whose identity
	// survives a refresh (Codex CLI, Gemini CLI), the live identity is no
	// slot's and not the one captured for the target. It wraps [ErrIdentityDrift], so
	// callers that test for that still see the refusal; file the login
	// under a sub of its own with [Manager.Adopt].
	ErrNewLogin error = newLoginError{}
	// ErrOlderLogin indicates that a heal would step backwards: the live
	// login expires before the one already in the slot (an older copy put
	// back, whose refresh token is likely used up). [Force] overrides it.
	ErrOlderLogin = errors.New("older login than the slot's")
	// ErrLiveDrifted indicates that the live path is a regular file that
	// matches no slot, so a switch would lose the token it holds.
	ErrLiveDrifted = errors.New("live file drifted")
	// ErrLiveChanged indicates that the live path changed while a switch or
	// heal was in progress; the newer entry was left in place.
	ErrLiveChanged = errors.New("live path changed concurrently")
	// ErrLockTimeout indicates that another change, or the CLI, held a lock
	// for longer than [WithLockTimeout].
	ErrLockTimeout = clilock.ErrTimeout
	// ErrLockLost indicates that another process took over a CLI lock the
	// change held, so the change was abandoned before the live path changed.
	ErrLockLost = clilock.ErrLost
	// ErrAmbiguous indicates that the journal cannot tell which sub the
	// drifted live file belongs to; name the sub with
	// [Manager.HealDriftTo].
	ErrAmbiguous = errors.New("ambiguous: cannot tell whose token is live")
	// ErrNoCandidate indicates that [Manager.SwitchNext] found no usable
	// sub to switch to; the reason says why each was passed over.
	ErrNoCandidate = errors.New("no usable subscription")
	// ErrInvalidated indicates that the server rejected the sub's login
	// ([Manager.MarkInvalid]) and no new login replaced it since.
	ErrInvalidated = errors.New("subscription invalidated")
	// ErrTooLarge indicates that a file is larger than the package ever
	// reads (1 MiB).
	ErrTooLarge = disk.ErrTooLarge
	// ErrLeased indicates that a sub's login is leased to a seat (see
	// [Manager.Lease]), so it may not be switched to or leased again, or
	// that a seat is already another lease's.
	ErrLeased = errors.New("leased")
	// ErrNoFreeSub indicates that [Manager.Lease] found no usable sub that
	// is not leased or live at home; the reason says why each was passed
	// over.
	ErrNoFreeSub = errors.New("no free subscription")
)

// newLoginError is [ErrNewLogin]: its own sentinel, and an
// [ErrIdentityDrift].
type newLoginError struct{}

func (newLoginError) Error() string { return "new login of another account" }
func (newLoginError) Unwrap() error { return ErrIdentityDrift }
