// Package credslots rotates the OAuth logins of AI coding-agent CLIs (Claude
// Code, Gemini CLI, Codex CLI) safely and offline. Operators keep several
// logins as named slots beside a live symlink,
//
//	~/.claude/.credentials.json -> .credentials.json.bob
//	~/.claude/.credentials.json.bob
//	~/.claude/.credentials.json.alice
//
// and flip the link to rotate. A Manager does the checks around that flip:
// it refuses to switch into an expired or unreadable slot (even when forced),
// detects hash drift when the live file matches no slot, detects identity
// drift when a slot's refresh token was replaced behind its back, defers
// automated changes while the caller reports busy-signals, and heals the
// live file back into its slot after the CLI's own token refresh.
//
// The package exists because of real incidents. A token refreshed by
// "claude /login" was written to the live file only, and the next switch
// would have silently put the stale token back; a CLI refresh turned the
// symlink into a regular file and stranded every slot at the old token; a
// login written through the symlink replaced the wrong slot's identity. So
// credslots never loses a credential: every file is written atomically
// (exclusive 0600 temp file, fsync, rename, directory fsync), the live path is
// replaced with a compare-and-swap that leaves a concurrent writer's newer
// file in place, and no backup is ever overwritten. Later, a switch made
// while Claude Code was refreshing let the rotated token of one account land
// in another account's slot; so every change now holds the CLI's own refresh
// locks (see [WithCLILocks]) besides a lock of its own, and is recorded in a
// journal, from which [Manager.HealDrift] knows whose token the live file
// holds, or refuses to guess.
//
// Every refusal returns an error that wraps one sentinel ([ErrNotFresh],
// [ErrDeferred], ...) so callers branch with errors.Is; [SwitchResult].Reason
// carries the same text for logs. The package never makes a network call and
// never logs, prints or returns token material; the caller hands it the API
// responses it got instead ([Manager.Observe]), and a rate limit, a rejected
// token or the usage a response reports then rests, invalidates or ranks the
// login.
package credslots
