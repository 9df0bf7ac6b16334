package credslots

import (
	"context"
	"log/slog"
	"time"
)

// discardHandler is the default logger's handler: it takes no record, so
// that a Manager without WithLogger neither builds nor formats any (a
// text handler writing to io.Discard formats every record, a few
// microseconds a switch).
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (h discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h discardHandler) WithGroup(string) slog.Handler           { return h }

// Change is one change a Manager made, as the hook of [WithOnChange]
// receives it. It never holds token material.
type Change struct {
	// Op is "switch", "heal", "adopt", "restore", "capture", "rest",
	// "invalid" or "remove", as the journal names it.
	Op  string `json:"op"`
	Sub string `json:"sub"`
	// From is the sub the live path held before the change, as far as the
	// change knows (see [SwitchResult]); "" when none or not a switch.
	From   string    `json:"from"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"` // the Manager's clock, UTC
}

// WithOnChange sets a hook that receives every change a Manager makes (a
// switch, heal, adopt, restore, capture, rest, invalid mark or removal),
// once it is done and after every lock was released, so the hook may take
// its time or call the Manager again. A refused or failed change is not
// reported. It runs on the goroutine that made the change; [WithOnSwitch]
// keeps working beside it.
func WithOnChange(hook func(Change)) Option {
	return func(c *config) { c.onChange = hook }
}

// announce queues c for the WithOnChange hook, to run when mu ends.
func (m *Manager) announce(mu *mutation, c Change) {
	hook := m.cfg.onChange
	if hook == nil || mu == nil {
		return
	}
	c.Time = m.cfg.now().UTC()
	mu.after = append(mu.after, func() { hook(c) })
}

// SwitchNextContext is [Manager.SwitchNext] whose waits for the locks end
// with ctx: a done ctx changes nothing and returns an error wrapping
// ctx.Err().
func (m *Manager) SwitchNextContext(ctx context.Context, reason string, opts ...SwitchOption) (SwitchResult, error) {
	return m.switchNext(ctx, reason, opts...)
}

// HealDriftContext is [Manager.HealDrift] whose waits for the locks end with
// ctx: a done ctx changes nothing and returns an error wrapping ctx.Err().
func (m *Manager) HealDriftContext(ctx context.Context, opts ...SwitchOption) (SwitchResult, error) {
	return m.heal(ctx, "", applySwitchOptions(opts))
}

// HealDriftToContext is [Manager.HealDriftTo] whose waits for the locks end
// with ctx: a done ctx changes nothing and returns an error wrapping
// ctx.Err().
func (m *Manager) HealDriftToContext(ctx context.Context, sub string, opts ...SwitchOption) (SwitchResult, error) {
	if !m.knows(sub) {
		return m.refuse(ErrUnknownSubscription, sub, m.unknownSub(sub), nil)
	}
	return m.heal(ctx, sub, applySwitchOptions(opts))
}

// AdoptContext is [Manager.Adopt] whose waits for the locks end with ctx:
// a done ctx changes nothing and returns an error wrapping ctx.Err().
func (m *Manager) AdoptContext(ctx context.Context, sub string, opts ...SwitchOption) (SwitchResult, error) {
	if !m.knows(sub) {
		return m.refuse(ErrUnknownSubscription, sub, m.unknownSub(sub), nil)
	}
	sc := applySwitchOptions(opts)
	sc.adopt = true
	return m.heal(ctx, sub, sc)
}
