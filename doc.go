// Package baton is a durable workflow orchestrator for Go: write flows and
// tasks as plain Go functions and Baton records every step in a store, so a
// run that fails or whose process is killed can be retried and continues
// where it stopped.
//
// # Tasks and flows
//
// A task is a function from an input to an output, with a name and a policy:
//
//	var square = baton.Task("square", func(ctx context.Context, n int) (int, error) {
//		return n * n, nil
//	}, baton.Retries(3), baton.Timeout(time.Minute))
//
// A flow is a function that calls tasks (and other flows) with ordinary Go
// control flow; the fan-out can be decided at run time:
//
//	var sweep = baton.Flow("sweep", func(ctx baton.Context, p Params) (int, error) {
//		one, err := square.Run(ctx, p.N)            // call and wait
//		futs := square.Map(ctx, []int{1, 2, 3})     // one task run per item
//		all, err := baton.WaitAll(ctx, futs)        // typed fan-in
//		f := square.Submit(ctx, 4)                  // a Future
//		...
//	})
//
//	func main() { baton.Main(sweep) }
//
// baton.Main gives the program a command line: run it with no arguments to
// run the first flow with its default parameters, `run FLOW --param k=v` to
// pass parameters, `retry RUN_ID` to resume a failed or crashed run, `flows`
// to list flows with their parameters as JSON Schema, and `runs list|show|logs`
// to inspect what was recorded. From Go, Open a Runtime and call Execute.
//
// # The journal
//
// Each task call in a flow run gets a step key from its position in the flow
// ("square/0", map items "square/1.7") or an explicit one (Key). Once a step
// completes, its result is durable before the flow sees it. When a run is
// retried, the flow function runs again from the top, and each step whose
// key, task and input hash match a completed step returns the recorded result
// without running; steps whose input changed run again. A flow that calls a
// different task at a recorded position fails with ErrNonDeterministic rather
// than mixing up results. Flows must therefore be deterministic given their
// parameters and step results: do side effects and read clocks, files and
// random numbers in tasks.
//
// # Reliability options
//
// Tasks take Retries (with RetryDelay, Backoff and Jitter), RetryIf, Timeout,
// and Cache or CacheKey to reuse results across runs. Errors wrapped with
// Permanent are never retried. Flows take FlowTimeout, FlowRetries,
// MaxConcurrency and Defaults. Settle waits for a map that may partly fail,
// AsCompleted yields results as they finish, and WaitFor orders a task after
// others without passing data. Logger gives an *slog.Logger whose records are
// stored with the task or flow run.
//
// # Stores and servers
//
// A program records its runs in an embedded SQLite store (--db, BATON_DB).
// Its `worker` command executes runs for a Baton server instead (`baton
// server`, on SQLite or PostgreSQL), and package client creates runs on a
// server from any Go program. To run flows in the program's own process on
// PostgreSQL, link the backend with import _ "github.com/batonhq/baton/postgres".
package baton
