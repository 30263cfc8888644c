package campaign

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/examples/flows/campaign/bo"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

func openRuntime(t *testing.T, logs io.Writer) *baton.Runtime {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	rt, err := baton.Open(context.Background(), baton.Config{DB: filepath.Join(t.TempDir(), "baton.db"), LogOutput: logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// fast are the default parameters with an instrument that takes about a
// millisecond.
func fast() Params {
	p := DefaultParams()
	p.InstrumentDelay = time.Millisecond
	return p
}

// TestCampaignReachesOptimum is the example's stated bound: with the
// default parameters (12 iterations of 4 experiments, 10% of attempts
// failing) the campaign uses at most 48 evaluations and its best value is
// within 1% of Branin's minimum.
func TestCampaignReachesOptimum(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2} {
		t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) {
			t.Parallel()
			rt := openRuntime(t, nil)
			p := fast()
			p.Seed = seed
			res, info, err := Flow.Execute(context.Background(), rt, p)
			if err != nil {
				t.Fatal(err)
			}
			if info.State != "COMPLETED" {
				t.Fatalf("run %s is %s, want COMPLETED", info.ID, info.State)
			}
			bound := p.Iterations * p.BatchSize
			if res.Evaluations > bound || res.Evaluations+res.Failed != bound {
				t.Errorf("%d evaluations and %d failed, want %d experiments in all (the bound)", res.Evaluations, res.Failed, bound)
			}
			if gap := (res.Best.Value - bo.BraninMin) / bo.BraninMin; gap > 0.01 || gap < -1e-6 {
				t.Errorf("best %.6f at (%.4f, %.4f): %.2f%% from the optimum %.6f, want within 1%%", res.Best.Value, res.Best.X1, res.Best.X2, 100*gap, bo.BraninMin)
			}
			if v := bo.Branin([]float64{res.Best.X1, res.Best.X2}); v != res.Best.Value {
				t.Errorf("best value %v is not Branin's value %v at its point", res.Best.Value, v)
			}
			if res.BestAt < 1 || res.BestAt > res.Evaluations {
				t.Errorf("best at evaluation %d of %d", res.BestAt, res.Evaluations)
			}
			if res.Iterations != 12 || len(res.History) != 12 || res.Stopped != "iterations" {
				t.Errorf("%d iterations, history of %d, stopped by %q", res.Iterations, len(res.History), res.Stopped)
			}
			prev := math.Inf(1)
			for _, h := range res.History {
				if h.BatchSize != 4 || h.Measured+h.Failed != 4 || h.Best == nil || *h.Best > prev {
					t.Errorf("iteration %+v (best before %v)", h, prev)
				}
				if h.Best != nil {
					prev = *h.Best
				}
			}
			// Decision points after iterations 4 and 8 (not after the last).
			if len(res.Decisions) != 2 || res.Decisions[0].AfterIteration != 4 || res.Decisions[1].AfterIteration != 8 {
				t.Fatalf("decisions %+v, want two, after iterations 4 and 8", res.Decisions)
			}
			for _, d := range res.Decisions {
				if d.By != "auto" || d.Decision.Action != ActionContinue || d.Decision.BatchSize != 0 || d.Decision.Bounds != nil ||
					!strings.Contains(d.Decision.Reason, "default decision after iteration "+strconv.Itoa(d.AfterIteration)) {
					t.Errorf("decision %+v, want the default one", d)
				}
			}
			t.Logf("best %.6f at evaluation %d of %d (%d failed)", res.Best.Value, res.BestAt, res.Evaluations, res.Failed)
		})
	}
}

// TestFailedExperimentsAreMissing runs a campaign on an instrument that
// fails most attempts: experiments that fail after their retries are told
// as missing, and the campaign goes on.
func TestFailedExperimentsAreMissing(t *testing.T) {
	t.Parallel()
	rt := openRuntime(t, nil)
	p := fast()
	p.InstrumentDelay = 0
	p.FailureRate = 0.6 // an experiment fails for good with chance 0.6⁴ ≈ 13%
	p.Iterations, p.BatchSize, p.DecisionEvery = 3, 8, 0
	res, info, err := Flow.Execute(context.Background(), rt, p)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "COMPLETED" {
		t.Fatalf("run is %s", info.State)
	}
	if res.Failed == 0 || res.Evaluations+res.Failed != 24 {
		t.Fatalf("%d evaluations and %d failed, want some failed of 24", res.Evaluations, res.Failed)
	}
	failed := 0
	for _, h := range res.History {
		if h.Measured+h.Failed != 8 {
			t.Errorf("iteration %+v", h)
		}
		failed += h.Failed
	}
	if failed != res.Failed || len(res.Decisions) != 0 {
		t.Errorf("history counts %d failed, result %d; decisions %v", failed, res.Failed, res.Decisions)
	}
}

// lineLog collects the runs' printed log lines, tagged with the phase of
// the test they were printed in, and calls onLine for each.
type lineLog struct {
	mu     sync.Mutex
	phase  int
	lines  map[int][]string
	onLine func(string)
	buf    bytes.Buffer
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			l.buf.WriteString(line) // incomplete: keep for the next write
			break
		}
		if l.lines == nil {
			l.lines = map[int][]string{}
		}
		l.lines[l.phase] = append(l.lines[l.phase], line)
		if l.onLine != nil {
			l.onLine(line)
		}
	}
	return len(p), nil
}

func (l *lineLog) setPhase(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phase = n
}

// iterations returns the iteration attribute of the lines of the phase
// with message msg.
func (l *lineLog) iterations(phase int, msg string) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	for _, line := range l.lines[phase] {
		if !strings.Contains(line, " msg="+msg+" ") && !strings.Contains(line, " msg="+strconv.Quote(msg)+" ") {
			continue
		}
		if m := iterationAttr.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
	}
	return out
}

var iterationAttr = regexp.MustCompile(` iteration=(\d+)( |\n|$)`)

// TestResumeFromJournal interrupts a campaign after its second iteration
// and resumes it: the optimizer's state is rebuilt from the recorded steps
// (no ask and no experiment of the first two iterations runs again) and the
// campaign ends exactly as one that was never interrupted.
func TestResumeFromJournal(t *testing.T) {
	t.Parallel()
	p := fast()
	p.Iterations = 6
	p.DecisionEvery = 2

	want, _, err := Flow.Execute(context.Background(), openRuntime(t, nil), p)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &lineLog{}
	logs.onLine = func(line string) {
		if strings.Contains(line, `msg="iteration done"`) && strings.Contains(line, " iteration=2 ") {
			cancel() // as if the process stopped here
		}
	}
	rt := openRuntime(t, logs)
	_, info, err := Flow.Execute(ctx, rt, p)
	if err == nil || info.State != "CANCELLED" {
		t.Fatalf("interrupted run: %s, %v; want CANCELLED", info.State, err)
	}
	logs.setPhase(1)
	got, info, err := Flow.Retry(context.Background(), rt, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "COMPLETED" || info.Attempt != 2 {
		t.Fatalf("resumed run is %s at attempt %d", info.State, info.Attempt)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Fatalf("resumed campaign's result differs from an uninterrupted one:\n got %s\nwant %s", g, w)
	}
	for _, msg := range []string{"asked", "measured"} {
		for _, it := range logs.iterations(1, msg) {
			if it <= 2 {
				t.Errorf("the resumed attempt logged %q for iteration %d, which the first attempt had recorded", msg, it)
			}
		}
		if len(logs.iterations(0, msg)) == 0 {
			t.Errorf("no %q lines in the first attempt: the check above proves nothing", msg)
		}
	}
	// The flow's own lines are not repeated while the journal replays (up
	// to the last step it recorded: iteration 2's last experiment).
	if its := logs.iterations(1, "iteration done"); len(its) == 0 || its[0] < 2 {
		t.Errorf("resumed attempt logged iterations %v done", its)
	}
}

// TestParamsValidate checks every refusal names its parameter, and that
// the flow refuses bad parameters without running anything.
func TestParamsValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultParams().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tt := range []struct {
		edit func(*Params)
		want string
	}{
		{func(p *Params) { p.Iterations = 0 }, "iterations is 0"},
		{func(p *Params) { p.BatchSize = 33 }, "batch_size is 33"},
		{func(p *Params) { p.InitialPoints = -1 }, "initial_points is -1"},
		{func(p *Params) { p.FailureRate = 1 }, "failure_rate is 1"},
		{func(p *Params) { p.FailureRate = math.NaN() }, "failure_rate is NaN"},
		{func(p *Params) { p.InstrumentDelay = -time.Second }, "instrument_delay is -1s"},
		{func(p *Params) { p.DecisionEvery = -1 }, "decision_every is -1"},
		{func(p *Params) { p.DecisionTimeout = -time.Second }, "decision_timeout is -1s"},
		{func(p *Params) { p.Bounds.X1 = [2]float64{3, 3} }, "bounds.x1 is [3, 3]"},
		{func(p *Params) { p.Bounds.X2 = [2]float64{0, math.Inf(1)} }, "bounds.x2 is [0, +Inf]"},
	} {
		p := DefaultParams()
		tt.edit(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate() = %v, want %q", err, tt.want)
		}
	}
	p := DefaultParams()
	p.Auto, p.DecisionEvery = false, 0 // no decision points: nothing to wait for
	if err := p.Validate(); err != nil {
		t.Errorf("auto=false without decision points: %v", err)
	}

	rt := openRuntime(t, nil)
	p = fast()
	p.BatchSize = 0
	_, info, err := Flow.Execute(context.Background(), rt, p)
	if err == nil || info.State != "FAILED" || !baton.IsPermanent(err) || !strings.Contains(err.Error(), "batch_size is 0") {
		t.Fatalf("run with batch_size 0: %s, %v", info.State, err)
	}
}

// TestDecisionValidate checks which decisions apply.
func TestDecisionValidate(t *testing.T) {
	t.Parallel()
	narrow := Bounds{X1: [2]float64{2, 4}, X2: [2]float64{1, 3}}
	for _, tt := range []struct {
		d    Decision
		want string // "" when valid
	}{
		{Decision{Action: ActionContinue}, ""},
		{Decision{Action: ActionStop, Reason: "enough"}, ""},
		{Decision{Action: ActionContinue, BatchSize: 8, Bounds: &narrow}, ""},
		{Decision{}, `action is ""`},
		{Decision{Action: "pause"}, `action is "pause"`},
		{Decision{Action: ActionContinue, BatchSize: 33}, "batch_size is 33"},
		{Decision{Action: ActionContinue, BatchSize: -1}, "batch_size is -1"},
		{Decision{Action: ActionStop, BatchSize: 2}, "cannot also change"},
		{Decision{Action: ActionContinue, Bounds: &Bounds{X1: [2]float64{4, 2}, X2: [2]float64{0, 1}}}, "bounds.x1 is [4, 2]"},
	} {
		err := tt.d.Validate()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: Validate() = %v, want %q", tt.d, err, tt.want)
		}
	}
}

// TestApply checks that a decision changes the next iterations' settings,
// the optimizer's bounds included, and that a bad one changes nothing.
func TestApply(t *testing.T) {
	t.Parallel()
	opt, err := bo.New(bo.Config{Bounds: BraninBounds.bo()})
	if err != nil {
		t.Fatal(err)
	}
	c := &settings{opt: opt, batchSize: 4, bounds: BraninBounds}
	narrow := Bounds{X1: [2]float64{2, 4}, X2: [2]float64{1, 3}}
	if stop, err := c.apply(Decision{Action: ActionContinue, BatchSize: 2, Bounds: &narrow}); stop || err != nil {
		t.Fatalf("apply: %v, %v", stop, err)
	}
	if c.batchSize != 2 || c.bounds != narrow || !reflect.DeepEqual(opt.Bounds(), narrow.bo()) {
		t.Fatalf("after the decision: batch %d, bounds %v, optimizer's %v", c.batchSize, c.bounds, opt.Bounds())
	}
	if stop, err := c.apply(Decision{Action: ActionContinue}); stop || err != nil || c.batchSize != 2 || c.bounds != narrow {
		t.Fatalf("a plain continue changed the settings: %+v, %v", c, err)
	}
	if _, err := c.apply(Decision{Action: ActionContinue, BatchSize: 99, Bounds: &BraninBounds}); err == nil || c.batchSize != 2 || c.bounds != narrow {
		t.Fatalf("a bad decision: %v, settings %+v", err, c)
	}
	if stop, err := c.apply(Decision{Action: ActionStop}); !stop || err != nil {
		t.Fatalf("stop: %v, %v", stop, err)
	}
}

// TestDecisionSchema checks Decision's JSON Schema, from the schema path
// that flow parameters and waited-for inputs share (params.SchemaFor), and
// that a scientist's input is checked against it: every violation listed
// with its JSON pointer.
func TestDecisionSchema(t *testing.T) {
	t.Parallel()
	schema := params.SchemaFor(reflect.TypeFor[Decision]())
	raw, err := json.Marshal(schema)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Required   []string `json:"required"`
		Properties map[string]struct {
			Type        any      `json:"type"`
			Enum        []string `json:"enum"`
			Minimum     *float64 `json:"minimum"`
			Maximum     *float64 `json:"maximum"`
			MaxLength   *int     `json:"maxLength"`
			Description string   `json:"description"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Required, []string{"action"}) {
		t.Errorf("required %v, want [action] (schema %s)", s.Required, raw)
	}
	a := s.Properties["action"]
	if !reflect.DeepEqual(a.Enum, []string{ActionContinue, ActionStop}) || a.Description == "" {
		t.Errorf("action: %+v", a)
	}
	b := s.Properties["batch_size"]
	if b.Minimum == nil || *b.Minimum != 1 || b.Maximum == nil || *b.Maximum != MaxBatchSize || b.Description == "" {
		t.Errorf("batch_size: %+v", b)
	}
	if r := s.Properties["reason"]; r.MaxLength == nil || *r.MaxLength != 2000 {
		t.Errorf("reason: %+v", r)
	}

	for _, tt := range []struct {
		input string
		want  []string // the pointers of the violations; none when valid
	}{
		{`{"action":"continue"}`, nil},
		{`{"action":"stop","reason":"enough"}`, nil},
		{`{"action":"continue","batch_size":8,"bounds":{"x1":[2,4],"x2":[1,3]}}`, nil},
		{`{}`, []string{""}},
		{`{"action":"pause"}`, []string{"/action"}},
		{`{"action":"continue","batch_size":0,"bounds":{"x1":[2],"x2":[1,3]},"colour":"red"}`, []string{"", "/batch_size", "/bounds/x1"}},
		{`{"action":"continue","batch_size":33}`, []string{"/batch_size"}},
	} {
		err := params.ValidateValue(schema, json.RawMessage(tt.input))
		var ve *params.ValidationError
		switch {
		case tt.want == nil && err != nil:
			t.Errorf("%s: %v", tt.input, err)
		case tt.want != nil && !errors.As(err, &ve):
			t.Errorf("%s: %v, want violations at %q", tt.input, err, tt.want)
		case tt.want != nil:
			var got []string
			for _, v := range ve.Violations {
				got = append(got, v.Pointer)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s: violations %v, want at %q", tt.input, ve.Violations, tt.want)
			}
		}
	}
}

// TestSimulate checks the simulated instrument: reproducible, failing at
// about its rate, and stopping when cancelled.
func TestSimulate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := Experiment{Iteration: 1, X1: math.Pi, X2: 2.275, Seed: 5, FailureRate: 0.3}
	failures := 0
	for i := range 200 {
		e.Index = i
		v1, err1 := simulate(ctx, e, 1)
		v2, err2 := simulate(ctx, e, 1)
		if v1 != v2 || (err1 == nil) != (err2 == nil) {
			t.Fatalf("experiment %d: %v, %v then %v, %v", i, v1, err1, v2, err2)
		}
		if err1 != nil {
			if !errors.Is(err1, ErrInstrument) {
				t.Fatalf("failure %v is not ErrInstrument", err1)
			}
			failures++
		} else if math.Abs(v1-bo.BraninMin) > 1e-5 {
			t.Fatalf("value %v at a minimizer", v1)
		}
	}
	if failures < 40 || failures > 80 {
		t.Errorf("%d of 200 attempts failed at a rate of 0.3", failures)
	}
	e.FailureRate = 0
	for i := range 50 {
		e.Index = i
		if _, err := simulate(ctx, e, 1); err != nil {
			t.Fatalf("failure at rate 0: %v", err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	e.Delay = time.Hour
	if _, err := simulate(cctx, e, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestScientistDecides: without auto, the campaign waits PAUSED at its
// decision point for a typed Decision; a decision the schema refuses is
// not recorded, one whose bounds are empty is refused by the flow, which
// waits again, and a valid one (a smaller batch, then a stop) is applied
// and on the run's history.
func TestScientistDecides(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rt, err := baton.Open(context.Background(), baton.Config{DB: filepath.Join(dir, "baton.db"), LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := fast()
	p.Auto, p.DecisionEvery, p.Iterations = false, 2, 8
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, _, err := Flow.Execute(context.Background(), rt, p)
		done <- outcome{res, err}
	}()
	ctx := context.Background()
	// waiting returns the run once it waits for a decision with a fresh wait.
	waits := 0
	waiting := func() string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			rs, _ := st.RunList(ctx, store.RunListParams{Flow: Flow.Name(), Limit: 1})
			if len(rs) == 1 && rs[0].State == store.RunPaused {
				trs, err := st.TaskRunList(ctx, store.TaskRunListParams{RunID: rs[0].ID, States: []store.TaskState{store.TaskWaiting}})
				if err != nil {
					t.Fatal(err)
				}
				all, _ := st.TaskRunList(ctx, store.TaskRunListParams{RunID: rs[0].ID})
				n := 0
				for _, tr := range all {
					if tr.Task == "input:"+DecisionKey {
						n++
					}
				}
				if len(trs) == 1 && n > waits {
					waits = n
					return rs[0].ID
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the campaign does not wait for decision %d", waits+1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	send := func(id, value string) error {
		_, err := st.InputSend(ctx, store.InputSendParams{RunID: id, Key: DecisionKey, Value: []byte(value),
			Actor: store.Actor{Name: "scientist"}, Validate: params.ValidateJSON})
		return err
	}
	id := waiting()
	if err := send(id, `{"action":"maybe"}`); err == nil || !strings.Contains(err.Error(), "/action") {
		t.Fatalf("decision outside the schema: %v, want a violation at /action", err)
	}
	if err := send(id, `{"action":"continue","bounds":{"x1":[3,3],"x2":[0,15]}}`); err != nil {
		t.Fatal(err)
	}
	waiting() // the flow refused the empty interval and waits again
	if err := send(id, `{"action":"continue","batch_size":2,"reason":"narrow down"}`); err != nil {
		t.Fatal(err)
	}
	waiting()
	if err := send(id, `{"action":"stop","reason":"good enough"}`); err != nil {
		t.Fatal(err)
	}
	out := <-done
	if out.err != nil {
		t.Fatal(out.err)
	}
	if out.res.Stopped != "decision" || out.res.Iterations != 4 {
		t.Errorf("campaign stopped by %q after %d iterations, want by the decision after 4", out.res.Stopped, out.res.Iterations)
	}
	if n := out.res.Evaluations + out.res.Failed; n != 2*4+2*2 {
		t.Errorf("%d experiments, want 12 (two batches of 4, then two of 2)", n)
	}
	hs, err := st.HistoryList(ctx, store.HistoryListParams{RunID: id})
	if err != nil {
		t.Fatal(err)
	}
	inputs := 0
	for _, h := range hs {
		if h.Action == store.ActionInputReceived && h.Actor.Name == "scientist" {
			inputs++
		}
	}
	if inputs != 3 {
		t.Errorf("%d decisions by the scientist in the history, want 3", inputs)
	}
}
