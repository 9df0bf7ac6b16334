package credslots

import (
	"fmt"
	"os"
	"time"
)

// envLockChild runs the test binary as a credslots change in another
// process (runLockChild): "hang" switches and then blocks inside the change,
// holding every lock, until killed; "switch" switches and exits; "status"
// prints the problems Status finds.
const envLockChild = "CREDSLOTS_TEST_LOCK_CHILD"

// envLockUmask makes the child run with umask 0277, as an agent user may.
const envLockUmask = "CREDSLOTS_TEST_LOCK_UMASK"

func runLockChild() int {
	dir := os.Getenv(envDir)
	if os.Getenv(envLockUmask) != "" {
		setUmask0277()
	}
	var opts []Option
	if os.Getenv(envLockChild) == "hang" {
		opts = append(opts, WithOnSwitch(func(string, string) {
			fmt.Println("holding")
			select {}
		}))
	}
	if os.Getenv(envLockChild) == "status" {
		m, err := New(WithCredsDir(dir), WithSubscriptions("bob"), WithClock(fixedClock))
		if err != nil {
			fmt.Println("error:", err)
			return 2
		}
		st, err := m.Status()
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		for _, p := range st.Problems {
			fmt.Println("problem:", p)
		}
		return 0
	}
	m, err := New(append([]Option{WithCredsDir(dir), WithSubscriptions("bob", "alice"), WithClock(fixedClock), WithLockTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	if _, err := m.SwitchTo("bob", "child"); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("switched")
	return 0
}
