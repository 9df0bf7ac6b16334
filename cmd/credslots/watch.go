package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/gptme/credslots"
	"github.com/gptme/credslots/internal/credfile"
	"github.com/gptme/credslots/internal/disk"
)

// watchEvent is one line watch prints.
type watchEvent struct {
	OK   bool      `json:"ok"` // false for a refusal or an error
	Time time.Time `json:"time"`
	// Event is healed, heal_refused, new_login, flip, identity_drift, drift
	// or error.
	Event string `json:"event"`
	Sub   string `json:"sub,omitempty"`
	From  string `json:"from,omitempty"`  // healed: the sub the live file was a copy of
	Error string `json:"error,omitempty"` // the error word of a refusal
	// Reason is the library's reason or the error's message.
	Reason string `json:"reason"`
}

// watcher is the state of one watch: what it already reported, so that
// each event is printed once and nothing is retried in a loop.
type watcher struct {
	a    *app
	o    *opts
	dir  string
	live string
	// tried is the live file a heal was last refused for (its kind and
	// hash, and the account .claude.json showed); a refusal is not
	// repeated until the live file, or the account shown, changes.
	tried string
	// finished is the live copy of a slot last finished (see finish): its
	// own key, which a check that finds no drift leaves as it is, so that
	// the lock directories the finish made do not wake the watch into
	// finishing, and taking the CLI's locks, again and again.
	finished string
	// refusal is the heal refusal last printed (the live file's key, the
	// error word and the reason): a deferred heal tried again after
	// --retry and refused for the same reason is not printed again.
	refusal string
	// flipErr is the error a flip was last not journaled with: said once,
	// not on every check until the journal can be written.
	flipErr string
	// drifted holds, per sub, the identity drift already reported.
	drifted map[string]string
	// retry is set when a deferred heal should be tried again, or a
	// drifted live file looked at again once its writes settled.
	retry *time.Timer
	// again is set while retry is a deferred heal's: that one is tried
	// again for the same live file. Waiting for the writes to settle is
	// not: the CLI rewrites .claude.json often, and each rewrite must not
	// make a refusal already decided be decided again, under every lock.
	again bool
	// finishAgain is set while retry is a finish's that met a held lock:
	// the retry clears finished, so that the same copy is finished then.
	finishAgain bool
	// settleFor is how long a drifted live file and .claude.json must stay
	// unchanged before a heal is decided: a login writes both, in either
	// order, and only the account .claude.json shows once both settled
	// tells a new login from a refresh.
	settleFor time.Duration
	// now is the clock the settling is measured with.
	now func() time.Time
	// shown is the account .claude.json showed when last read, and the
	// file it was read from (see shownAccount).
	shown      string
	shownFrom  os.FileInfo
	shownFound bool
}

func (a *app) cmdWatch(o *opts, _ []string) int {
	if o.retry <= 0 || o.debounce < 0 {
		return a.usageError(errors.New("watch: --retry must be positive and --settle not negative"))
	}
	m, err := a.manager("")
	if err != nil {
		return a.fail(err)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return a.fail(fmt.Errorf("watch: %w", err))
	}
	defer fw.Close()
	dir := m.CredsDir()
	if err := fw.Add(dir); err != nil {
		return a.fail(fmt.Errorf("watch %s: %w", dir, err))
	}
	w := &watcher{a: a, o: o, dir: dir, live: m.LivePath(), drifted: map[string]string{}, settleFor: o.loginSettle, now: time.Now}
	// .claude.json, where a login records its account, may live beside the
	// creds dir: follow its directory too, for its own name only.
	claudeJSON := m.ClaudeJSONPath()
	if claudeJSON != "" && filepath.Dir(claudeJSON) != filepath.Clean(dir) {
		if err := fw.Add(filepath.Dir(claudeJSON)); err != nil {
			return a.fail(fmt.Errorf("watch %s: %w", filepath.Dir(claudeJSON), err))
		}
	}
	fmt.Fprintf(a.stderr, "credslots: watching %s (%s); interrupt to stop\n", printable(dir), a.tool.Name())

	// Changes come in bursts (a temporary file, a rename, lock directories):
	// act once things settle.
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	var retryC <-chan time.Time
	w.check(m)
	for {
		if w.retry != nil {
			retryC = w.retry.C
		} else {
			retryC = nil
		}
		select {
		case <-a.ctx.Done():
			settle.Stop()
			if w.retry != nil {
				w.retry.Stop()
			}
			fmt.Fprintln(a.stderr, "credslots: watch stopped")
			return exitOK
		case ev, ok := <-fw.Events:
			if !ok {
				return a.fail(errors.New("watch: the file watcher stopped"))
			}
			if filepath.Clean(ev.Name) == filepath.Clean(dir) && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				w.emit(watchEvent{Event: "error", Error: "error", Reason: "creds dir " + dir + " was removed or renamed"})
				return exitError
			}
			if filepath.Dir(filepath.Clean(ev.Name)) != filepath.Clean(dir) && !strings.HasPrefix(filepath.Base(ev.Name), ".claude.json") {
				continue // another file beside .claude.json
			}
			settle.Reset(o.debounce)
		case err, ok := <-fw.Errors:
			if !ok {
				return a.fail(errors.New("watch: the file watcher stopped"))
			}
			// An overflow loses events: look at everything again.
			w.emit(watchEvent{Event: "error", Error: "error", Reason: "file watcher: " + err.Error()})
			settle.Reset(o.debounce)
		case <-settle.C:
			if m, err = w.manager(m); err != nil {
				w.emit(watchEvent{Event: "error", Error: "error", Reason: message(err)})
				continue
			}
			w.check(m)
		case <-retryC:
			w.retry = nil
			if w.again {
				w.tried = ""
			}
			if w.finishAgain {
				w.finished = ""
			}
			w.again, w.finishAgain = false, false
			if m, err = w.manager(m); err != nil {
				w.emit(watchEvent{Event: "error", Error: "error", Reason: message(err)})
				continue
			}
			w.check(m)
		}
	}
}

// manager is m, rebuilt when the subs are discovered, so that a slot added
// meanwhile is watched too.
func (w *watcher) manager(m *credslots.Manager) (*credslots.Manager, error) {
	if len(w.a.subs) > 0 {
		return m, nil
	}
	if _, err := os.Stat(w.dir); err != nil {
		return m, err
	}
	subs, err := credslots.DiscoverSubscriptions(w.dir, w.a.tool.DefaultSlotTemplate())
	if err != nil || len(subs) == 0 || equal(subs, m.Subscriptions()) {
		return m, err
	}
	return credslots.New(w.a.options(w.dir, subs)...)
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// check heals a drifted live file and reports identity drift; it prints
// only what changed since the last check.
func (w *watcher) check(m *credslots.Manager) {
	// A flip of the link by hand is journaled as soon as it is seen, so
	// that a later refresh is healed into the sub it pointed at.
	sub, ok, err := m.RecordFlip()
	switch reason := ""; {
	case err != nil:
		if reason = message(err); reason != w.flipErr {
			w.flipErr = reason
			w.emit(watchEvent{Event: "error", Error: "error", Reason: reason})
		}
	case ok:
		w.flipErr = ""
		w.emit(watchEvent{Event: "flip", Sub: sub, Reason: "the live path was pointed at " + sub + " (or given a copy of its slot) outside credslots; a later refresh is healed into " + sub})
	default:
		w.flipErr = ""
	}
	w.heal(m)
	for _, sub := range m.Subscriptions() {
		id, err := m.DetectSlotIdentityDrift(sub)
		if err != nil || !id.Drift {
			delete(w.drifted, sub)
			continue
		}
		key := id.StoredFingerprint + "/" + id.CurrentFingerprint
		if w.drifted[sub] == key {
			continue
		}
		w.drifted[sub] = key
		w.emit(watchEvent{Event: "identity_drift", Sub: sub, Error: "identity_drift", Reason: id.Reason})
	}
}

// heal heals the live file when it drifted, once per live content.
func (w *watcher) heal(m *credslots.Manager) {
	drift, err := m.DetectLiveSlotDrift()
	if err != nil {
		key := "error:" + err.Error()
		if w.tried != key {
			w.tried = key
			w.emit(watchEvent{Event: "error", Error: "error", Reason: message(err)})
		}
		return
	}
	if drift == nil || !drift.Drift {
		w.tried, w.refusal = "", ""
		w.finish(m, drift)
		return
	}
	if wait := w.unsettled(m); wait > 0 {
		// Not yet: look again once the writes have settled.
		if w.retry == nil {
			w.retry = time.NewTimer(wait)
		}
		return
	}
	key := drift.LiveHash + "/" + w.shownAccount(m.ClaudeJSONPath())
	if fi, err := os.Lstat(w.live); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(w.live)
		key = "symlink:" + target + ":" + key
	}
	if key == w.tried {
		return
	}
	w.tried = key
	if w.o.noHeal {
		w.emit(watchEvent{Event: "drift", Error: "live_drifted", Reason: "live file matches no slot (heal with credslots heal --auto)"})
		return
	}
	res, err := m.HealDrift()
	if err == nil {
		w.tried, w.refusal = "", ""
		sub, _ := m.ActiveSubscription()
		w.emit(watchEvent{Event: "healed", Sub: sub, From: res.From, Reason: res.Reason})
		return
	}
	word, _ := classify(err)
	if errors.Is(err, credslots.ErrNewLogin) {
		// A /login to another account: it stays live until it is filed
		// under a sub of its own.
		w.emit(watchEvent{Event: "new_login", Error: word, Reason: "a new login is live: " + clean(res.Reason, err) +
			"; it stays live, not healed"})
		return
	}
	if word == "no_drift" {
		// Healed meanwhile by someone else.
		w.tried, w.refusal = "", ""
		return
	}
	if retried(word) {
		if w.retry == nil {
			w.retry = time.NewTimer(w.o.retry)
		}
		w.again = true
	}
	reason := res.Reason
	if reason == "" {
		reason = err.Error()
	}
	reason = clean(reason, err)
	sub, _ := m.LastActive()
	if said := key + "\x00" + word + "\x00" + reason; said != w.refusal {
		w.refusal = said
		w.emit(watchEvent{Event: "heal_refused", Sub: sub, Error: word, Reason: reason})
	}
}

// shownAccount is shownAccount(path), read again only when the file at
// path is another one (Claude Code replaces it by a rename), or its size or
// mtime changed: a check that another file woke (history.jsonl, a slot)
// does not read a .claude.json of tens of MB again.
func (w *watcher) shownAccount(path string) string {
	if path == "" {
		return ""
	}
	fi, err := os.Stat(path)
	if err != nil {
		w.shownFound = false
		return ""
	}
	if w.shownFound && os.SameFile(fi, w.shownFrom) && fi.Size() == w.shownFrom.Size() && fi.ModTime().Equal(w.shownFrom.ModTime()) {
		return w.shown
	}
	w.shown, w.shownFrom, w.shownFound = shownAccount(path), fi, true
	return w.shown
}

// shownAccount is what identifies the account .claude.json at path shows
// (a digest of its oauthAccount member), "" when there is none: a heal
// refused for a live file is decided again when it changes, since whether
// a drifted live file is a refresh or a new login depends on it.
func shownAccount(path string) string {
	if path == "" {
		return ""
	}
	data, err := disk.ReadRegularMax(path, credfile.MaxClaudeJSON)
	if err != nil {
		return ""
	}
	acct := credfile.AccountIn(data)
	if acct == nil {
		return ""
	}
	var b bytes.Buffer
	if json.Compact(&b, acct) == nil {
		acct = b.Bytes()
	}
	sum := sha256.Sum256(acct)
	return hex.EncodeToString(sum[:8])
}

// unsettled returns how much longer to wait before a drifted live file may
// be healed: until it and .claude.json have both stayed unchanged for
// settleFor. 0 when they have.
func (w *watcher) unsettled(m *credslots.Manager) time.Duration {
	if w.settleFor <= 0 {
		return 0
	}
	latest := time.Time{}
	for _, p := range []string{w.live, m.ClaudeJSONPath()} {
		if p == "" {
			continue
		}
		if fi, err := os.Lstat(p); err == nil && fi.ModTime().After(latest) {
			latest = fi.ModTime()
		}
	}
	if left := w.settleFor - w.now().Sub(latest); left > 0 {
		return left
	}
	return 0
}

// finish completes an interrupted heal: a live regular file that is a
// slot's copy (a heal stopped before it put the link back) is handed to
// HealDrift once, which puts the link back or reports no drift.
func (w *watcher) finish(m *credslots.Manager, drift *credslots.DriftInfo) {
	if w.o.noHeal {
		return
	}
	fi, err := os.Lstat(w.live)
	if drift == nil || drift.MatchingSlot == "" || err != nil || !fi.Mode().IsRegular() {
		w.finished = "" // no copy now: the next one is finished, even of the same slot
		return
	}
	key := drift.LiveHash
	if w.finished == key {
		return
	}
	w.finished = key
	res, err := m.HealDrift() // no drift: it only finishes an interrupted heal
	if word, _ := classify(err); err != nil && retried(word) {
		// A lock held: tried again after --retry, when the retry clears
		// the key (events meanwhile, its own lock directories among them,
		// do not).
		if w.retry == nil {
			w.retry = time.NewTimer(w.o.retry)
		}
		w.finishAgain = true
		w.emit(watchEvent{Event: "heal_refused", Sub: res.Sub, Error: word, Reason: clean(err.Error(), err)})
		return
	}
	if sub, ok := m.ActiveSubscription(); ok {
		w.emit(watchEvent{Event: "healed", Sub: sub, Reason: "completed an interrupted heal; symlink restored"})
	}
}

// emit prints one event: a line, or one JSON object on a line.
func (w *watcher) emit(ev watchEvent) {
	ev.Time = w.a.now().UTC()
	ev.OK = ev.Error == ""
	if w.a.json {
		data, err := json.Marshal(ev)
		if err != nil {
			return
		}
		fmt.Fprintf(w.a.stdout, "%s\n", data)
		return
	}
	line := ev.Time.Format(time.RFC3339) + " " + ev.Event
	if ev.Sub != "" {
		line += " " + printable(ev.Sub)
	}
	if ev.Error != "" && ev.Error != ev.Event {
		line += " (" + ev.Error + ")"
	}
	fmt.Fprintf(w.a.stdout, "%s: %s\n", line, printable(ev.Reason))
}

// retried reports whether a heal refused with the error word is tried
// again after --retry: it met a busy signal or a lock another held.
func retried(word string) bool {
	switch word {
	case "deferred", "lock_timeout", "lock_lost", "live_changed":
		return true
	}
	return false
}
