// Command credslots-etcd shares a pool of AI coding-agent CLI logins among
// agents on several hosts through etcd: a login is live in at most one seat
// at a time, and every refresh finds its way back into the pool. Run
// credslots-etcd help for its flags and commands.
package main

import (
	"os"

	"github.com/gptme/credslots/etcd/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
