// Command credslots inspects and rotates the credential slots of an AI
// coding-agent CLI from the shell, cron or a service manager, with the
// safety checks of the credslots package.
//
//	credslots [global flags] COMMAND [ARGS] [flags]
//
// Commands:
//
//	init NAME                       keep the one login you have as slot NAME
//	status                          the health snapshot, as a table or JSON
//	check                           the same for monitoring: exit 0 healthy, 1 problems
//	switch SUB|--next               point the live symlink at a slot
//	heal SUB|--auto [--dry-run]     copy a refreshed live file into its slot
//	add SUB                         adopt a fresh login from the live file as SUB
//	remove SUB                      take SUB out of the rotation (its slot kept as a backup)
//	capture SUB                     record SUB's identity after a fresh login
//	rest SUB --until T|--for D      pass SUB over in switch --next until then (--clear ends it)
//	invalid SUB                     mark SUB's token as rejected by the server
//	observe SUB < head              act on an API response's head (curl -sD -)
//	backups [SUB]                   list the kept backups
//	restore BACKUP SUB              write a backup into SUB's slot
//	log [-n N]                      the journal's newest records
//	watch                           heal refreshes as they land, report identity drift
//	run [--seat DIR] [--sub SUB] -- CMD  run CMD with a sub's login leased to a seat
//	leases                          which sub's login is live in which seat
//	help [COMMAND]                  the help of credslots or of a command
//
// Global flags (--tool, --dir, --subs, --grace, --lock-glob, --busy-proc,
// --no-cli-locks, --json, -v, --version) go before or after the command;
// every command has its own -h. Exit codes: 0 done, 1 refused, deferred,
// unhealthy or nothing to do, 2 error or bad usage. Every change is
// recorded by the library in <dir>/.credslots/journal.jsonl, and made under
// the CLI's own locks unless --no-cli-locks. The command never prints token
// material.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := &app{now: time.Now, stdout: os.Stdout, stderr: os.Stderr, ctx: ctx}
	code := a.run(os.Args[1:])
	stop()
	os.Exit(code)
}
