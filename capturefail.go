package credslots

import (
	"fmt"
	"strings"
)

// captureFailed makes a fingerprint capture that failed after a change
// visible, not only logged: it is logged, journaled as a failed capture
// (which [Manager.Status] reports as a problem until sub's identity is
// captured or a later change to sub captures it), and added to the
// change's reason, which the command prints.
func (m *Manager) captureFailed(sub, reason string, err error) string {
	m.cfg.logger.Warn("fingerprint capture failed after change",
		"sub", sub, "path", m.prints[sub], "reason", err.Error())
	e := JournalEntry{Time: m.cfg.now(), Op: opCapture, Phase: phaseFailed, Sub: sub,
		Reason: "fingerprint capture after the change failed", Error: err.Error()}
	if rerr := m.record(e); rerr != nil {
		m.cfg.logger.Warn("journal record failed", "sub", sub, "op", e.Op, "phase", e.Phase, "reason", rerr.Error())
	}
	return fmt.Sprintf("%s; but its fingerprint capture failed (%s): run capture %s", reason, err, sub)
}

// captureProblems lists, for Status, every sub whose newest record in the
// journal is a fingerprint capture that failed after a change.
func captureProblems(entries []JournalEntry) map[string]string {
	out := map[string]string{}
	decided := map[string]bool{}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if decided[e.Sub] {
			continue
		}
		switch {
		case e.Op == opCapture && e.Phase == phaseFailed:
			out[e.Sub] = strings.TrimPrefix(e.Error, "credslots: ")
			decided[e.Sub] = true
		case e.Phase == phaseDone && (e.Op == opCapture || e.Op == opSwitch || e.Op == opHeal || e.Op == opAdopt || e.Op == opRestore):
			decided[e.Sub] = true
		}
	}
	return out
}
