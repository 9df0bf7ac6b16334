package etcd_test

// The module's tests run a real etcd cluster of three members, each a
// separate process (this test binary, re-executed as a member), and run
// lessees as separate processes too (the test binary re-executed as
// credslots-etcd), each with its own seat and an agent (the test binary
// again) standing in for the CLI.

import (
	"os"
	"testing"

	"github.com/gptme/credslots/etcd/internal/cli"
)

// roleEnv selects what a re-executed test binary is.
const roleEnv = "CREDSLOTS_ETCD_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "member":
		os.Exit(memberMain())
	case "cli":
		os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
	case "agent":
		os.Exit(agentMain())
	}
	code := m.Run()
	stopSharedCluster()
	os.Exit(code)
}
