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

	"github.com/batonhq/baton/examples/flows"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/cli/batoncmd"
	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/cli/servecmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	cfg := servecmd.Config{Examples: progcmd.ProgramOf("baton dev", flows.All()...)}
	code := batoncmd.Baton(ctx, os.Args[1:], env, cfg)
	stop()
	os.Exit(code)
}
