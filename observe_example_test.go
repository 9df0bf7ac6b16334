package credslots_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gptme/credslots"
)

// An agent's loop: call the API with the live login, hand every response to
// Observe, and rotate when it says the login is spent. The server here is a
// stand-in for the API on 127.0.0.1 that answers as Anthropic's does for a
// subscription: usage on every response, then a rejection.
func ExampleManager_Observe() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	now := time.Now()
	for _, sub := range []string{"bob", "alice", "erik"} {
		writeCred(filepath.Join(dir, ".credentials.json."+sub), now.Add(8*time.Hour), "rt-"+sub)
	}
	m, err := credslots.New(
		credslots.WithCredsDir(dir),
		credslots.WithSubscriptions("bob", "alice", "erik"),
	)
	if err != nil {
		panic(err)
	}
	if _, err := m.SwitchTo("bob", "start"); err != nil {
		panic(err)
	}

	calls := 0
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls++
		reset := strconv.FormatInt(now.Add(2*time.Hour).Unix(), 10)
		w.Header().Set("Anthropic-Ratelimit-Unified-5h-Reset", reset)
		if calls < 3 {
			w.Header().Set("Anthropic-Ratelimit-Unified-Status", "allowed")
			w.Header().Set("Anthropic-Ratelimit-Unified-5h-Utilization", []string{"", "0.6", "0.9"}[calls])
			return
		}
		w.Header().Set("Anthropic-Ratelimit-Unified-5h-Utilization", "1")
		w.Header().Set("Anthropic-Ratelimit-Unified-Status", "rejected")
		w.Header().Set("Anthropic-Ratelimit-Unified-Representative-Claim", "five_hour")
		w.Header().Set("Anthropic-Ratelimit-Unified-Reset", reset)
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer api.Close()

	// What earlier responses said of the other logins: alice has 20% of
	// her five-hour window left, erik 70%.
	for sub, used := range map[string]string{"alice": "0.8", "erik": "0.3"} {
		h := http.Header{"Anthropic-Ratelimit-Unified-5h-Utilization": {used}}
		if _, err := m.Observe(sub, http.StatusOK, h); err != nil {
			panic(err)
		}
	}

	for i := 0; i < 3; i++ {
		sub, _ := m.ActiveSubscription()
		resp, err := http.Get(api.URL)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		obs, err := m.Observe(sub, resp.StatusCode, resp.Header)
		if err != nil {
			panic(err)
		}
		fmt.Println(sub, resp.StatusCode, obs.Outcome, *obs.Headroom)
		if obs.Outcome == credslots.OutcomeRested || obs.Outcome == credslots.OutcomeInvalidated {
			res, err := m.SwitchNext("rate limited")
			fmt.Println(res.Reason, err)
		}
	}
	// Output:
	// bob 200 recorded 0.4
	// bob 200 recorded 0.1
	// bob 429 rested 0
	// switched to erik <nil>
}
