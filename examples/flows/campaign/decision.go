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

// decide is the campaign's decision point: it returns the decision to apply
// after s.Iteration and who took it.
//
// DECISION WAIT: this is the one function that changes when
// baton.WaitForInput lands (issue 8). Today only auto mode exists
// (Params.Validate refuses auto=false while decisions are on), and the
// default decision is taken by the recorded step autoDecide, so that it is
// on the run's record like any input. The change is, for !p.Auto:
//
//	d, err := baton.WaitForInput[Decision](ctx, fmt.Sprintf("decision-%d", s.Iteration),
//		baton.Prompt(...the status...), baton.Within(p.DecisionTimeout), ...resume with DefaultDecision(s)...)
//	return d, "<the sender, from the run's history>", err
//
// (the schema checks the fields; the flow's settings.apply then checks the
// intervals with Decision.Validate).
//
// and lifting the refusal in Params.Validate. The rest of the flow applies
// whatever decide returns and needs no change.
func decide(ctx baton.Context, p Params, s Status) (Decision, string, error) {
	if !p.Auto {
		return Decision{}, "", baton.Permanent(errors.New("decisions from a scientist need baton.WaitForInput, which this version of Baton does not have"))
	}
	d, err := autoDecide.Run(ctx, s, baton.Key(fmt.Sprintf("decision-%d", s.Iteration)))
	if err != nil {
		return Decision{}, "", err
	}
	return d, "auto", nil
}

// autoDecide takes the default decision on the status. It is a task only
// so that the decision and what it was taken on are recorded as a step of
// the run, where `baton runs show` lists them.
var autoDecide = baton.Task("decide", func(_ context.Context, s Status) (Decision, error) {
	return DefaultDecision(s), nil
})
