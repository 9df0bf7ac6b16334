package etcd

import "errors"

var (
	// ErrLeased reports a sub leased to another seat.
	ErrLeased = errors.New("leased")
	// ErrNoFreeSub reports that no sub could be leased; the error says why
	// each was passed over.
	ErrNoFreeSub = errors.New("no free sub")
	// ErrUnknownSub reports a sub the pool holds no login for.
	ErrUnknownSub = errors.New("unknown sub")
	// ErrFenced reports a write-back the pool refused because the lease
	// was lost or the login changed since this lessee read it.
	ErrFenced = errors.New("write-back refused by the fence")
	// ErrLeaseLost reports a lease that could not be renewed in time.
	ErrLeaseLost = errors.New("lease lost")
	// ErrBadKey reports a key file that is missing, not exactly 32 bytes,
	// or open to others, or a value the key cannot open.
	ErrBadKey = errors.New("bad key")
	// ErrDuplicate reports a login another sub already holds.
	ErrDuplicate = errors.New("login held by another sub")
	// ErrOlder reports a login older than the one the pool holds: it is
	// never written over it.
	ErrOlder = errors.New("older than the stored login")
	// ErrNoBackup reports a name that is not one of the pool's backups.
	ErrNoBackup = errors.New("no such backup")
	// ErrPending reports a login left in a seat that could not be written
	// back yet.
	ErrPending = errors.New("write-back pending")
)

// errLoginsChanging reports a write-back or an import that found, each time
// it checked again, another sub's login written between its duplicate
// check and its transaction: nothing was written, and nothing was lost.
var errLoginsChanging = errors.New("other subs' logins kept changing between the check and the write; try again")
