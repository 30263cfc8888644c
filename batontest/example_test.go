package batontest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/batontest"
)

// The task and flow under test, as a program defines them.
var (
	charge = baton.Task("example.charge", func(ctx context.Context, cents int) (string, error) {
		return "", errors.New("the payment provider is down") // the real one, never called here
	}, baton.Retries(3))

	checkout = baton.Flow("example.checkout", func(ctx baton.Context, cents int) (string, error) {
		return charge.Run(ctx, cents)
	})
)

// A test of checkout with charge mocked: it fails twice, then succeeds.
// The retries wait 1s and 2s on the environment's clock, which moves by
// itself, so the test takes milliseconds.
func Example() {
	t, done := exampleTB() // in a test: the test's *testing.T
	defer done()
	env := batontest.New(t)
	batontest.Mock(env, charge, func(ctx context.Context, cents int) (string, error) {
		if info, _ := baton.TaskRunFrom(ctx); info.Attempt < 3 {
			return "", errors.New("declined, try again")
		}
		return fmt.Sprintf("receipt for %d cents", cents), nil
	})
	run, err := batontest.Run(env, checkout, 1250)
	if err != nil {
		fmt.Println("run failed:", err)
		return
	}
	fmt.Println(run.State, run.Result)
	for _, c := range batontest.Calls(run, charge) {
		fmt.Printf("%s(%d) = %q after %d attempts, %s on the clock\n",
			c.Run.Task, c.Input, c.Output, c.Run.Attempts, c.Run.EndedAt.Sub(c.Run.StartedAt).Round(time.Second))
	}
	// Output:
	// COMPLETED receipt for 1250 cents
	// example.charge(1250) = "receipt for 1250 cents" after 3 attempts, 3s on the clock
}

// The approval step of a campaign: a scientist has two days to choose the
// next batch size, else it goes on with 4.
type batchChoice struct {
	Size int `json:"size" jsonschema:"minimum=1,maximum=16"`
}

var campaign = baton.Flow("example.campaign", func(ctx baton.Context, _ struct{}) (int, error) {
	if err := baton.Sleep(ctx, 12*time.Hour); err != nil { // let the instrument cool down
		return 0, err
	}
	c, err := baton.WaitForInput[batchChoice](ctx, "batch", baton.Prompt("next batch size?"),
		baton.Within(48*time.Hour), baton.Default(batchChoice{Size: 4}))
	return c.Size, err
})

// A test of a flow that waits: it starts the run, waits until it is
// PAUSED on its input (the 12-hour sleep passes by itself), sends the
// input (input out of the schema's bounds is refused), and reads the
// result. The clock stands still while the test acts, so the 48-hour
// deadline cannot pass first.
func Example_waits() {
	t, done := exampleTB()
	defer done()
	env := batontest.New(t)
	h, err := batontest.Start(env, campaign, struct{}{})
	if err != nil {
		fmt.Println(err)
		return
	}
	w := env.WaitPaused(h.ID, "batch")
	fmt.Println(w.Task, w.Wait.Prompt, "after", env.Now().Sub(batontest.DefaultStart))
	fmt.Println(batontest.SendInput(env, h.ID, "batch", batchChoice{Size: 40}) != nil)
	if err := batontest.SendInput(env, h.ID, "batch", batchChoice{Size: 8}); err != nil {
		fmt.Println(err)
		return
	}
	run, err := h.Wait()
	fmt.Println(run.State, run.Result, err)
	// Output:
	// input:batch next batch size? after 12h0m0s
	// true
	// COMPLETED 8 <nil>
}
