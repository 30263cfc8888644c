package campaign

import (
	"context"
	"errors"
	"fmt"

	"github.com/batonhq/baton"
)

// The actions of a Decision.
const (
	ActionContinue = "continue"
	ActionStop     = "stop"
)

// Decision is what a scientist decides at a decision point: go on (with
// the same settings, or a new batch size or new bounds) or stop. Its JSON
// Schema comes from Baton's schema path (the doc tags give descriptions,
// the jsonschema tags, in github.com/invopop/jsonschema's syntax, the
// keywords), so the input a scientist sends is checked against it before
// the flow sees it. Validate checks what a schema cannot: that each
// interval's low end is below its high end, and that a stop changes
// nothing else.
type Decision struct {
	Action    string  `json:"action" doc:"continue the campaign, or stop it now" jsonschema:"required,enum=continue,enum=stop"`
	BatchSize int     `json:"batch_size,omitempty" doc:"experiments per batch from the next iteration on (absent: unchanged)" jsonschema:"minimum=1,maximum=32"`
	Bounds    *Bounds `json:"bounds,omitempty" doc:"the search space from the next iteration on (absent: unchanged)"`
	Reason    string  `json:"reason,omitempty" doc:"why, kept in the run's record" jsonschema:"maxLength=2000"`
}

// Validate reports whether d can be applied, naming the field at fault.
func (d Decision) Validate() error {
	switch {
	case d.Action != ActionContinue && d.Action != ActionStop:
		return fmt.Errorf("action is %q: want %q or %q", d.Action, ActionContinue, ActionStop)
	case d.BatchSize < 0 || d.BatchSize > MaxBatchSize:
		return fmt.Errorf("batch_size is %d: want 1 to %d, or absent to keep it", d.BatchSize, MaxBatchSize)
	case d.Action == ActionStop && (d.BatchSize != 0 || d.Bounds != nil):
		return errors.New("a decision to stop cannot also change batch_size or bounds")
	case d.Bounds != nil:
		return d.Bounds.Validate("bounds")
	}
	return nil
}

// DefaultDecision is the decision taken at a decision point in auto mode
// (and, once decisions can be waited for, when none arrives in time):
// continue with the same batch size and bounds. The campaign then runs
// all its iterations, so its number of evaluations is at most
// iterations × batch_size.
func DefaultDecision(s Status) Decision {
	best := "no value yet"
	if s.Best != nil {
		best = fmt.Sprintf("best %.6g after %d evaluations", s.Best.Value, s.Evaluations)
	}
	return Decision{
		Action: ActionContinue,
		Reason: fmt.Sprintf("default decision after iteration %d: continue with batch size %d and the same bounds (%s)", s.Iteration, s.BatchSize, best),
	}
}

// DecisionKey is the input key of the campaign's decision points:
//
//	baton runs resume RUN_ID --key decision --input '{"action":"continue","batch_size":2}'
const DecisionKey = "decision"

// decide is the campaign's decision point: it returns the decision to apply
// after s.Iteration and who took it. In auto mode the default decision is
// taken by the recorded step autoDecide; otherwise the run waits, PAUSED,
// for a scientist's typed Decision (its JSON Schema checks the fields as
// it is sent; Validate then checks the intervals, and a decision that
// fails waits again with the reason in the prompt). With a
// DecisionTimeout, the default decision is taken when none arrives in
// time. Who sent the decision is in the run's history.
func decide(ctx baton.Context, p Params, s Status) (Decision, string, error) {
	if p.Auto {
		d, err := autoDecide.Run(ctx, s, baton.Key(fmt.Sprintf("decision-%d", s.Iteration)))
		if err != nil {
			return Decision{}, "", err
		}
		return d, "auto", nil
	}
	prompt := decisionPrompt(s)
	for {
		opts := []baton.WaitOption{baton.Prompt(prompt)}
		if p.DecisionTimeout > 0 {
			opts = append(opts, baton.Within(p.DecisionTimeout), baton.Default(DefaultDecision(s)))
		}
		d, err := baton.WaitForInput[Decision](ctx, DecisionKey, opts...)
		if err != nil {
			return Decision{}, "", err
		}
		if verr := d.Validate(); verr != nil {
			prompt = fmt.Sprintf("the last decision was refused (%v); %s", verr, decisionPrompt(s))
			continue
		}
		return d, "input", nil
	}
}

// decisionPrompt tells the scientist where the campaign stands.
func decisionPrompt(s Status) string {
	best := "no value yet"
	if s.Best != nil {
		best = fmt.Sprintf("best %.6g at (%.4g, %.4g) after %d evaluations", s.Best.Value, s.Best.X1, s.Best.X2, s.Evaluations)
	}
	return fmt.Sprintf("iteration %d done (%s): continue (optionally with a new batch_size or bounds) or stop?", s.Iteration, best)
}

// autoDecide takes the default decision on the status. It is a task only
// so that the decision and what it was taken on are recorded as a step of
// the run, where `baton runs show` lists them.
var autoDecide = baton.Task("decide", func(_ context.Context, s Status) (Decision, error) {
	return DefaultDecision(s), nil
})
