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
// Once a step (a task or subflow call) completes, its result is durable
// before the flow sees it. When a run is retried, the flow function runs
// again from the top and each call is answered from the journal of the
// earlier attempts when it matches a completed step:
//
//   - A call's identity is its task (or subflow), the task's Version, the
//     hash of its input and its occurrence among the identical calls of the
//     attempt: the k-th call of square(3) reuses the k-th recorded
//     completion of square(3). Order, goroutines and the calls around it do
//     not matter, so a result only ever goes to a call of the same task
//     with the same input.
//   - A call with an explicit key (Key) is identified by that key: it reuses
//     the step recorded under the key when its task, version and input are
//     the same, and runs again otherwise; a recorded key called with another
//     task fails the run with ErrNonDeterministic.
//   - Keys are for people: "square/0" from the call's position, "square/1.7"
//     for map items. A reused step keeps its recorded key; a new step whose
//     position key a recorded step holds gets "square/0#2".
//
// Between attempts you may therefore reorder calls, make them from
// goroutines, insert or remove calls, fix a task's code (bump its Version,
// as Version("2"), to run its completed steps again) and edit the run's
// parameters (`retry RUN_ID --param k=v`, RetryWith): every call whose task
// and input are unchanged is reused, the others run (a renamed task is a
// new task). Do not reuse an explicit key for another task; do not change
// what a task returns, or its result type, without a new Version (a reused
// result is decoded into the type the code has now); and keep flows
// deterministic given their parameters and step results (effects on the
// world and files belong in tasks; the flow's own readings of the clock and
// random choices go through Now, Random and SideEffect, which record them
// once): a call whose input differs is a new step.
//
// Tasks and flows receive values as decoded from their recorded JSON, on the
// first run as on replay and on a worker: a task's input and every result a
// flow gets. A field that JSON leaves out (an unexported one, or one tagged
// "-") arrives as its zero value every time. Defining two tasks, or two
// flows, under one name panics, naming both places.
//
// # Reliability options
//
// Tasks take Retries (with RetryDelay, Backoff and Jitter), RetryIf, Timeout,
// Version, and Cache or CacheKey to reuse results across runs. Errors wrapped with
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
