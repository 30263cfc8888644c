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
