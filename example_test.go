package baton_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/batonhq/baton"
)

func openExampleRuntime() (*baton.Runtime, func()) {
	dir, err := os.MkdirTemp("", "baton-example-")
	if err != nil {
		panic(err)
	}
	rt, err := baton.Open(context.Background(), baton.Config{DB: filepath.Join(dir, "baton.db"), LogOutput: os.Stdout})
	if err != nil {
		panic(err)
	}
	return rt, func() { rt.Close(); os.RemoveAll(dir) }
}

// A flow fans a task out over its inputs and gathers the typed results.
func Example() {
	square := baton.Task("example-square", func(_ context.Context, n int) (int, error) { return n * n, nil })
	sumOfSquares := baton.Flow("example-sum-of-squares", func(ctx baton.Context, n int) (int, error) {
		items := make([]int, n)
		for i := range items {
			items[i] = i + 1
		}
		squares, err := baton.WaitAll(ctx, square.Map(ctx, items))
		if err != nil {
			return 0, err
		}
		total := 0
		for _, s := range squares {
			total += s
		}
		return total, nil
	})

	rt, done := openExampleRuntime()
	defer done()
	total, run, err := sumOfSquares.Execute(context.Background(), rt, 4)
	fmt.Println(total, run.State, err)
	// Output: 30 COMPLETED <nil>
}

// A failed run is retried: completed steps are reused from the journal.
func ExampleFlowDef_Retry() {
	var broken = true
	calls := 0
	fetch := baton.Task("example-fetch", func(_ context.Context, url string) (string, error) {
		calls++
		return "payload of " + url, nil
	})
	publish := baton.Task("example-publish", func(_ context.Context, s string) (int, error) {
		if broken {
			return 0, baton.Permanent(errors.New("publisher is down"))
		}
		return len(s), nil
	})
	pipeline := baton.Flow("example-pipeline", func(ctx baton.Context, url string) (int, error) {
		body, err := fetch.Run(ctx, url)
		if err != nil {
			return 0, err
		}
		return publish.Run(ctx, body)
	})

	rt, done := openExampleRuntime()
	defer done()
	_, run, _ := pipeline.Execute(context.Background(), rt, "data.csv")
	fmt.Println("first attempt:", run.State)
	broken = false
	n, run, _ := pipeline.Retry(context.Background(), rt, run.ID)
	fmt.Println("second attempt:", run.State, n, "fetch calls:", calls)
	// Output:
	// first attempt: FAILED
	// second attempt: COMPLETED 19 fetch calls: 1
}

// A task retries transient errors with exponential backoff.
func ExampleRetries() {
	attempts := 0
	flaky := baton.Task("example-flaky", func(_ context.Context, _ struct{}) (string, error) {
		attempts++
		if attempts < 3 {
			return "", errors.New("connection reset")
		}
		return "ok", nil
	}, baton.Retries(5), baton.RetryDelay(time.Millisecond), baton.Backoff(2, 10*time.Millisecond))
	flow := baton.Flow("example-retries", func(ctx baton.Context, _ struct{}) (string, error) {
		return flaky.Run(ctx, struct{}{})
	})

	rt, done := openExampleRuntime()
	defer done()
	out, _, err := flow.Execute(context.Background(), rt, struct{}{})
	fmt.Println(out, err, "after", attempts, "attempts")
	// Output: ok <nil> after 3 attempts
}

// Settle lets a map tolerate some failed items.
func ExampleSettle() {
	parse := baton.Task("example-parse", func(_ context.Context, s string) (int, error) {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil {
			return 0, baton.Permanent(fmt.Errorf("parse %q: %w", s, err))
		}
		return n, nil
	})
	flow := baton.Flow("example-settle", func(ctx baton.Context, in []string) (int, error) {
		outcomes, err := baton.Settle(ctx, parse.Map(ctx, in), 0.5)
		if err != nil {
			return 0, err
		}
		sum := 0
		for _, o := range outcomes {
			if o.Err != nil {
				fmt.Println("skipped", o.Key)
				continue
			}
			sum += o.Value
		}
		return sum, nil
	})

	rt, done := openExampleRuntime()
	defer done()
	sum, _, err := flow.Execute(context.Background(), rt, []string{"1", "2", "x", "4"})
	fmt.Println(sum, err)
	// Output:
	// skipped example-parse/0.2
	// 7 <nil>
}

// A flow records a non-deterministic choice once: its retry takes the same
// branch without making the choice again.
func ExampleSideEffect() {
	var broken = true
	draws := 0
	label := baton.Task("example-label", func(_ context.Context, batch string) (string, error) {
		if broken {
			return "", baton.Permanent(errors.New("labeller offline"))
		}
		return "labelled " + batch, nil
	})
	flow := baton.Flow("example-side-effect", func(ctx baton.Context, _ struct{}) (string, error) {
		batch, err := baton.SideEffect(ctx, "batch", func(context.Context) (string, error) {
			draws++
			return fmt.Sprintf("batch-%d", 40+draws), nil
		})
		if err != nil {
			return "", err
		}
		return label.Run(ctx, batch)
	})

	rt, done := openExampleRuntime()
	defer done()
	_, run, _ := flow.Execute(context.Background(), rt, struct{}{})
	broken = false
	out, _, err := flow.Retry(context.Background(), rt, run.ID)
	fmt.Println(out, draws, err)
	// Output: labelled batch-41 1 <nil>
}

// Tags attaches tags to a task's runs. With a concurrency limit on a tag
// (`baton limits set robot 4`), at most four distributed task runs (tasks
// with Queue, run by workers) carrying it are RUNNING at once, anywhere;
// the others wait AWAITING_SLOT. In a local run the task runs in-process
// and its tags are only recorded.
func ExampleTags() {
	arm := baton.Task("example-arm", func(_ context.Context, well int) (string, error) {
		return fmt.Sprintf("sampled well %d", well), nil
	}, baton.Queue("lab"), baton.Tags("robot"))
	flow := baton.Flow("example-tags", func(ctx baton.Context, _ struct{}) (string, error) {
		return arm.Run(ctx, 7)
	})

	rt, done := openExampleRuntime()
	defer done()
	out, _, err := flow.Execute(context.Background(), rt, struct{}{})
	fmt.Println(out, err)
	// Output: sampled well 7 <nil>
}

// A task declares what each of its runs needs, and a fallback for when no
// live worker has it: on workers (the worker command's --cpu, --memory
// and --gpu), a task run of train waits for a worker with a free GPU, and
// runs trainOnCPU instead when none serving the gpu queue is alive after
// five minutes. In a local run, as here, queues and resources do not
// apply: the task runs in the process.
func ExampleResources() {
	trainOnCPU := baton.Task("example-train-cpu", func(_ context.Context, epochs int) (string, error) {
		return fmt.Sprintf("model after %d epochs (CPU)", epochs), nil
	}, baton.Queue("cpu"))
	train := baton.Task("example-train", func(_ context.Context, epochs int) (string, error) {
		return fmt.Sprintf("model after %d epochs (GPU)", epochs), nil
	}, baton.Queue("gpu"), baton.Resources{CPU: 2, Memory: "4GiB", GPU: 1}, baton.Fallback(trainOnCPU, 5*time.Minute))
	nightly := baton.Flow("example-nightly-training", func(ctx baton.Context, epochs int) (string, error) {
		return train.Run(ctx, epochs)
	})

	rt, done := openExampleRuntime()
	defer done()
	model, run, err := nightly.Execute(context.Background(), rt, 3)
	fmt.Println(model, run.State, err)
	// Output: model after 3 epochs (GPU) COMPLETED <nil>
}
