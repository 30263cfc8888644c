// Command baton inspects the flow runs recorded in a Baton store: list them,
// show one with its task runs and history, and print its logs.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/batonhq/baton/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Baton(ctx, os.Args[1:], &cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
