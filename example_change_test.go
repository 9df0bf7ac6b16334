package credslots_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gptme/credslots"
)

// SwitchNext says where it went and where it came from: no need to ask
// ActiveSubscription afterwards, which another process may have changed.
func ExampleSwitchResult() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	now := time.Now()
	writeCred(filepath.Join(dir, ".credentials.json.bob"), now.Add(8*time.Hour), "rt-bob")
	writeCred(filepath.Join(dir, ".credentials.json.alice"), now.Add(9*time.Hour), "rt-alice")
	m, err := credslots.New(credslots.WithCredsDir(dir), credslots.WithSubscriptions("bob", "alice"))
	if err != nil {
		panic(err)
	}
	res, _ := m.SwitchTo("bob", "start of day")
	fmt.Printf("to %s from %q\n", res.Sub, res.From)
	res, _ = m.SwitchNext("bob hit its quota")
	fmt.Printf("to %s from %q\n", res.Sub, res.From)
	// Output:
	// to bob from ""
	// to alice from "bob"
}

// WithOnChange hears of every change once its locks are released, so the
// hook may notify, log or even call the Manager again.
func ExampleWithOnChange() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	now := time.Now()
	writeCred(filepath.Join(dir, ".credentials.json.bob"), now.Add(8*time.Hour), "rt-bob")
	writeCred(filepath.Join(dir, ".credentials.json.alice"), now.Add(9*time.Hour), "rt-alice")
	m, err := credslots.New(
		credslots.WithCredsDir(dir),
		credslots.WithSubscriptions("bob", "alice"),
		credslots.WithOnChange(func(c credslots.Change) {
			fmt.Printf("%s %s (from %q): %s\n", c.Op, c.Sub, c.From, c.Reason)
		}),
	)
	if err != nil {
		panic(err)
	}
	_, _ = m.SwitchTo("bob", "start of day")
	_, _ = m.SwitchTo("alice", "bob hit its quota")
	_ = m.Rest("bob", now.Add(5*time.Hour), "429 from the API")
	_, err = m.SwitchTo("zed", "no such sub")
	fmt.Println("refused:", errors.Is(err, credslots.ErrUnknownSubscription))
	// Output:
	// switch bob (from ""): start of day
	// switch alice (from "bob"): bob hit its quota
	// rest bob (from ""): 429 from the API
	// refused: true
}

// A cancelled context changes nothing: the switch is not even started.
func ExampleManager_SwitchToContext() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	now := time.Now()
	writeCred(filepath.Join(dir, ".credentials.json.bob"), now.Add(8*time.Hour), "rt-bob")
	writeCred(filepath.Join(dir, ".credentials.json.alice"), now.Add(9*time.Hour), "rt-alice")
	m, err := credslots.New(credslots.WithCredsDir(dir), credslots.WithSubscriptions("bob", "alice"))
	if err != nil {
		panic(err)
	}
	if _, err := m.SwitchTo("bob", "start of day"); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the caller gave up, say on SIGINT
	res, err := m.SwitchToContext(ctx, "alice", "too late")
	active, _ := m.ActiveSubscription()
	fmt.Println(res.OK, errors.Is(err, context.Canceled), active)
	// Output:
	// false true bob
}
