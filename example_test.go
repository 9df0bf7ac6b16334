package credslots_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gptme/credslots"
)

// writeCred writes a Claude Code credential that expires at exp.
func writeCred(path string, exp time.Time, refreshToken string) {
	doc := fmt.Sprintf(`{"claudeAiOauth":{"accessToken":"at","refreshToken":%q,"expiresAt":%d}}`,
		refreshToken, exp.UnixMilli())
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		panic(err)
	}
}

func exampleDir() string {
	dir, err := os.MkdirTemp("", "credslots-example")
	if err != nil {
		panic(err)
	}
	return dir
}

func ExampleManager_SwitchTo() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	now := time.Now()
	writeCred(filepath.Join(dir, ".credentials.json.bob"), now.Add(8*time.Hour), "rt-bob")
	writeCred(filepath.Join(dir, ".credentials.json.alice"), now.Add(-time.Hour), "rt-alice")

	m, err := credslots.New(
		credslots.WithCredsDir(dir),
		credslots.WithSubscriptions("bob", "alice"),
	)
	if err != nil {
		panic(err)
	}

	res, err := m.SwitchTo("bob", "alice quota exhausted")
	fmt.Println(res.OK, res.Reason, err)

	// An expired slot is refused, even with Force.
	res, err = m.SwitchTo("alice", "bob quota exhausted", credslots.Force())
	fmt.Println(res.OK, errors.Is(err, credslots.ErrNotFresh))

	active, _ := m.ActiveSubscription()
	target, _ := os.Readlink(m.LivePath())
	fmt.Println(active, target)
	// Output:
	// true switched to bob <nil>
	// false true
	// bob .credentials.json.bob
}

func ExampleManager_SwitchTo_deferred() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	writeCred(filepath.Join(dir, ".credentials.json.bob"), time.Now().Add(8*time.Hour), "rt-bob")

	m, err := credslots.New(
		credslots.WithCredsDir(dir),
		credslots.WithSubscriptions("bob"),
		credslots.WithLockGuard(func() []string { return []string{"agent-42"} }),
	)
	if err != nil {
		panic(err)
	}
	res, err := m.SwitchTo("bob", "cron rotation")
	fmt.Println(errors.Is(err, credslots.ErrDeferred), res.DeferredLocks)
	fmt.Println(res.Reason)
	// Output:
	// true [agent-42]
	// deferred: active lock(s) agent-42; would switch to bob (cron rotation)
}

func ExampleManager_DetectLiveSlotDrift() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	exp := time.Now().Add(8 * time.Hour)
	writeCred(filepath.Join(dir, ".credentials.json.bob"), exp, "rt-bob")
	// An operator's /login wrote a new token to the live file only.
	writeCred(filepath.Join(dir, ".credentials.json"), exp, "rt-new-login")

	m, err := credslots.New(credslots.WithCredsDir(dir), credslots.WithSubscriptions("bob"))
	if err != nil {
		panic(err)
	}
	drift, err := m.DetectLiveSlotDrift()
	if err != nil {
		panic(err)
	}
	fmt.Printf("drift=%v matching=%q\n", drift.Drift, drift.MatchingSlot)

	// Switching now would lose that token, so it is refused.
	_, err = m.SwitchTo("bob", "rotate")
	fmt.Println(errors.Is(err, credslots.ErrLiveDrifted))
	// Output:
	// drift=true matching=""
	// true
}

func ExampleManager_HealDriftTo() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	now := time.Now()
	slot := filepath.Join(dir, ".credentials.json.bob")
	writeCred(slot, now.Add(time.Hour), "rt-bob-1")
	live := filepath.Join(dir, ".credentials.json")
	if err := os.Symlink(".credentials.json.bob", live); err != nil {
		panic(err)
	}
	// The CLI refreshes its token: a regular file replaces the symlink.
	if err := os.Remove(live); err != nil {
		panic(err)
	}
	writeCred(live, now.Add(8*time.Hour), "rt-bob-2")

	m, err := credslots.New(credslots.WithCredsDir(dir), credslots.WithSubscriptions("bob"))
	if err != nil {
		panic(err)
	}
	res, err := m.HealDriftTo("bob") // the caller knows bob was active
	fmt.Println(res.OK, res.Reason, err)
	target, _ := os.Readlink(live)
	_, backup := os.Stat(slot + ".prev")
	fmt.Println(target, backup == nil)
	// Output:
	// true healed: synced live → .credentials.json.bob, symlink restored <nil>
	// .credentials.json.bob true
}

func ExampleManager_DetectSlotIdentityDrift() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	slot := filepath.Join(dir, ".credentials.json.bob")
	writeCred(slot, time.Now().Add(8*time.Hour), "rt-bob")

	m, err := credslots.New(credslots.WithCredsDir(dir), credslots.WithSubscriptions("bob"))
	if err != nil {
		panic(err)
	}
	if _, err := m.CaptureSlotFingerprint("bob"); err != nil { // after a fresh login
		panic(err)
	}
	// A login for another account is written through the symlink into bob's slot.
	writeCred(slot, time.Now().Add(8*time.Hour), "rt-someone-else")

	info, err := m.DetectSlotIdentityDrift("bob")
	if err != nil {
		panic(err)
	}
	fmt.Println(info.Drift, info.Reason)
	// Output:
	// true refresh token changed since last capture — slot identity may have been replaced
}

func ExampleManager_Status() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o700); err != nil {
		panic(err)
	}
	now := time.Now()
	writeCred(filepath.Join(dir, ".credentials.json.bob"), now.Add(8*time.Hour), "rt-bob")
	writeCred(filepath.Join(dir, ".credentials.json.alice"), now.Add(-time.Hour), "rt-alice")

	m, err := credslots.New(credslots.WithCredsDir(dir), credslots.WithSubscriptions("bob", "alice"))
	if err != nil {
		panic(err)
	}
	if _, err := m.SwitchTo("alice", "rotate"); err != nil {
		fmt.Println("refused:", errors.Is(err, credslots.ErrNotFresh))
	}
	st, err := m.Status()
	if err != nil {
		panic(err)
	}
	fmt.Printf("healthy=%v live=%s problems=%d\n", st.Healthy, st.Live.Kind, len(st.Problems))
	for _, s := range st.Slots {
		fmt.Printf("%s fresh=%v active=%v\n", s.Sub, s.Fresh, s.Active)
	}
	// Output:
	// refused: true
	// healthy=false live=missing problems=1
	// bob fresh=true active=false
	// alice fresh=false active=false
}

func ExampleGlobLockGuard() {
	locks := exampleDir()
	defer os.RemoveAll(locks)
	// A running agent session holds a lock file with its PID.
	pid := fmt.Sprint(os.Getpid())
	if err := os.WriteFile(filepath.Join(locks, "agent-7.lock"), []byte(pid), 0o600); err != nil {
		panic(err)
	}
	guard := credslots.GlobLockGuard(filepath.Join(locks, "agent-*.lock"))
	fmt.Println(guard())
	// Output:
	// [agent-7]
}

func ExampleManager_SwitchNext() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	now := time.Now()
	writeCred(filepath.Join(dir, ".credentials.json.bob"), now.Add(2*time.Hour), "rt-bob")
	writeCred(filepath.Join(dir, ".credentials.json.alice"), now.Add(8*time.Hour), "rt-alice")
	writeCred(filepath.Join(dir, ".credentials.json.erik"), now.Add(6*time.Hour), "rt-erik")

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

	// The API said alice is rate-limited for the next hour: rotation
	// passes her over, and takes the freshest other login.
	if err := m.Rest("alice", now.Add(time.Hour), "429 from the API"); err != nil {
		panic(err)
	}
	res, err := m.SwitchNext("bob hit its quota")
	fmt.Println(res.Reason, err)

	for _, c := range m.Candidates() {
		fmt.Printf("%s usable=%v %v\n", c.Sub, c.Usable, c.PassedOver != "")
	}
	// Output:
	// switched to erik <nil>
	// erik usable=true false
	// bob usable=true false
	// alice usable=false true
}

func ExampleManager_MarkInvalid() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	now := time.Now()
	bob := filepath.Join(dir, ".credentials.json.bob")
	writeCred(bob, now.Add(8*time.Hour), "rt-bob")
	writeCred(filepath.Join(dir, ".credentials.json.alice"), now.Add(8*time.Hour), "rt-alice")

	m, err := credslots.New(
		credslots.WithCredsDir(dir),
		credslots.WithSubscriptions("bob", "alice"),
	)
	if err != nil {
		panic(err)
	}
	if _, err := m.SwitchTo("alice", "start"); err != nil {
		panic(err)
	}

	// The server answered 401 for bob's token although it had not expired.
	if err := m.MarkInvalid("bob", "401 from the API"); err != nil {
		panic(err)
	}
	_, err = m.SwitchTo("bob", "rotate")
	fmt.Println(errors.Is(err, credslots.ErrInvalidated))

	// After a new login for bob (a new refresh token in his slot), he can
	// be used again.
	writeCred(bob, now.Add(8*time.Hour), "rt-bob-new-login")
	if _, err := m.CaptureSlotFingerprint("bob"); err != nil {
		panic(err)
	}
	res, err := m.SwitchTo("bob", "rotate")
	fmt.Println(res.Reason, err)
	// Output:
	// true
	// switched to bob <nil>
}
