// Command baton is Baton's command line: the API server (baton server), a
// one-command local setup with the bundled example flows (baton dev), and the
// commands that inspect and manage runs, workers and queues, through a server
// (--server, BATON_SERVER) or directly on the store (--db).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/examples/flows"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defs, tasks := baton.Definitions(flows.All()...)
	env := &cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv,
		Examples: cli.Program{Name: "baton dev", Flows: defs, Tasks: tasks}, NewServer: newServer}
	code := cli.Baton(ctx, os.Args[1:], env)
	stop()
	os.Exit(code)
}

// newServer creates the API server of `baton server` and `baton dev`.
func newServer(c cli.ServerConfig) (cli.APIServer, error) {
	s, err := server.New(server.Config{Store: c.Store, Blobs: c.Blobs, Logger: c.Logger,
		LeaseTimeout: c.LeaseTimeout, Retention: c.Retention, MaxBlobBytes: c.MaxBlobBytes})
	if err != nil {
		return nil, err
	}
	return s, nil
}
