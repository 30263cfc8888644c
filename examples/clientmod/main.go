// Command clientmod creates a run on a Baton server with the Go client
// (package client), waits for it to end and prints its result on stdout.
// It is a module of its own, as a program of yours would be: it imports
// only Baton's public packages, which is what lets it build outside
// Baton's module (go.mod's replace points at this checkout; yours would
// require a released version instead).
//
// Start a server with the bundled example flows, then run it:
//
//	go run ./cmd/baton dev        # in the checkout's root
//	cd examples/clientmod && go run . --flow etl --params '{"rows": 200}'
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
)

func main() {
	server := os.Getenv("BATON_SERVER")
	if server == "" {
		server = "http://127.0.0.1:8420"
	}
	flag.StringVar(&server, "server", server, "base URL of the Baton server (default $BATON_SERVER, else http://127.0.0.1:8420)")
	flow := flag.String("flow", "etl", "the flow to run")
	params := flag.String("params", "", "the run's parameters as a JSON object (default: the flow's defaults)")
	timeout := flag.Duration("timeout", 5*time.Minute, "how long to wait for the run to end")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := run(ctx, server, *flow, *params); err != nil {
		fmt.Fprintln(os.Stderr, "clientmod:", err)
		os.Exit(1)
	}
}

// run creates a run of flow, waits for it and prints its result.
func run(ctx context.Context, server, flow, params string) error {
	c, err := client.New(server)
	if err != nil {
		return err
	}
	req := apitype.CreateRunRequest{Flow: flow}
	if params != "" {
		if !json.Valid([]byte(params)) {
			return fmt.Errorf("--params is not valid JSON: %s", params)
		}
		req.Parameters = json.RawMessage(params)
	}
	r, _, err := c.CreateRun(ctx, req)
	if err != nil {
		return fmt.Errorf("create a run of %s: %w", flow, err)
	}
	fmt.Fprintf(os.Stderr, "clientmod: created run %s of flow %s (%s)\n", r.ID, r.Flow, r.State)
	if r.WaitingReason != "" {
		fmt.Fprintf(os.Stderr, "clientmod: it waits: %s\n", r.WaitingReason)
	}

	r, err = c.WaitRun(ctx, r.ID)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("run %s is still %s", r.ID, r.State)
	}
	if err != nil {
		return fmt.Errorf("wait for run %s: %w", r.ID, err)
	}
	if r.State != apitype.RunCompleted {
		msg := ""
		if r.Error != nil {
			msg = ": " + r.Error.Message
		}
		return fmt.Errorf("run %s ended %s%s", r.ID, r.State, msg)
	}

	// The run's detail has its task runs: say how many ran.
	d, err := c.GetRun(ctx, r.ID)
	if err != nil {
		return fmt.Errorf("read run %s: %w", r.ID, err)
	}
	fmt.Fprintf(os.Stderr, "clientmod: run %s COMPLETED (attempt %d, %d task runs)\n", d.ID, d.Attempt, len(d.TaskRuns))
	_, err = fmt.Printf("%s\n", d.Result)
	return err
}
