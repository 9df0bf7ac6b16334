// Package etcd keeps a pool of credslots logins in etcd, so that agents on
// several hosts share them with the guarantee a [credslots.Manager] lease
// gives on one machine: a sub's login is live in at most one seat at a time,
// and its newest token always finds its way back into the pool.
//
// Each sub's login is one key under the pool's prefix, sealed with
// AES-256-GCM under a key the operator supplies (etcd keeps values
// unencrypted on disk); the ciphertext is bound to its key name. A lease is
// a key created in a transaction only if absent and bound to a
// [concurrency.Session] that the lessee keeps alive. Every write-back is a
// transaction comparing the lease key's lease ID and the login's revision,
// so a lessee whose lease was lost can never overwrite a newer login. A
// lessee that cannot renew within half its TTL reports the lease lost on
// [Lease.Done], early enough to stop its command before the server can hand
// the login to another host.
//
// Layout under the prefix P (default "/credslots/"):
//
//	P logins/<sub>            the sealed login
//	P leases/<sub>            the lease record (seat, host, pid, since), bound to the session's lease
//	P backups/<sub>/<nanos>   a sealed login that could not be written back
package etcd
