// Command credslots inspects and rotates the credential slots of an AI
// coding-agent CLI from the shell or cron, with the safety checks of the
// credslots package.
//
//	credslots [--tool claude|gemini|codex] [--dir D] [--subs a,b] [--grace 5m]
//	          [--lock-glob PATTERN]... [--busy-proc NAME]... [--no-cli-locks]
//	          [--json] [-v] COMMAND [ARGS]
//
// Commands:
//
//	status                              the health snapshot, as a table or JSON
//	check                               the same for monitoring: exit 0 healthy, 1 problems
//	switch SUB [--reason R] [--force]   point the live symlink at SUB's slot
//	heal SUB|--auto [--force] [--dry-run]
//	                                    copy a refreshed live file into its slot
//	capture SUB                         record SUB's identity after a fresh login
//	log [-n N]                          the journal's newest records
//
// Exit codes: 0 done, 1 refused, deferred or unhealthy, 2 error or bad usage.
// Every change is recorded by the library in <dir>/.credslots/journal.jsonl,
// and made under the CLI's own locks unless --no-cli-locks. The command
// never prints token material.
package main

import (
	"os"
	"time"
)

func main() {
	a := &app{now: time.Now, stdout: os.Stdout, stderr: os.Stderr}
	os.Exit(a.run(os.Args[1:]))
}
