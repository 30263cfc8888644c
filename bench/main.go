// Command bench is Baton's benchmark harness. It measures the engine against
// the physical ceiling of its store and prints one name=value line per
// figure on stdout at the end; progress goes to stderr.
//
//	go run ./bench local [-scale F] [-dir PATH]
//	go run ./bench distributed [-scale F] [-dir PATH] [-workers N] [-pg URL]
//	go run ./bench ui [-runs N] [-dir PATH] [-repeats N]
//	go run ./bench ui-run [-scale F] [-dir PATH] [-chromium PATH] [-loads N]
//
// See bench/README.md for what each figure means and the targets.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `usage: bench SUBCOMMAND [flags]

Subcommands:
  local        benchmark the in-process engine on a local SQLite store
  distributed  benchmark a baton server and worker processes on PostgreSQL
  ui           server time of the web UI's runs list (API and page) over 1M runs on SQLite
  ui-run       load the run page of a run of 100,000 task runs in headless Chromium

Flags of local and distributed:
  -scale F     multiply every item count by F (default 1; 0.01 is a quick smoke run)
  -dir PATH    work directory (default: a temporary directory removed at the end)

Flags of ui:
  -runs N      runs in the store (default 1000000)
  -dir PATH    work directory; a store of at least N runs there is reused
  -repeats N   requests per query (default 20)

Flags of distributed:
  -workers N   worker processes (default 4)
  -pg URL      PostgreSQL database (default $BATON_TEST_POSTGRES, else a throwaway
               server started with scripts/with-postgres.sh)

Flags of ui-run (and -scale, -dir):
  -chromium PATH  the browser (default $BATON_CHROMIUM, else chromium on PATH)
  -loads N        cold loads of the page measured, the median reported (default 5)
`

// childMap1M is the hidden subcommand the local suite re-executes itself
// with to measure the 1M-item map in a process of its own.
const childMap1M = "local-child-1m"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches on the subcommand and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "local":
		var cfg localConfig
		if cfg, err = parseLocal(args[1:], stderr); err == nil {
			err = runLocal(ctx, cfg, stdout, stderr)
		}
	case "distributed":
		var cfg distConfig
		if cfg, err = parseDistributed(args[1:], stderr); err == nil {
			err = runDistributed(ctx, cfg, args[1:], stdout, stderr)
		}
	case "ui":
		var cfg uiConfig
		if cfg, err = parseUI(args[1:], stderr); err == nil {
			err = runUI(ctx, cfg, stdout, stderr)
		}
	case "ui-run":
		var cfg uiRunConfig
		if cfg, err = parseUIRun(args[1:], stderr); err == nil {
			err = runUIRun(ctx, cfg, stdout, stderr)
		}
	case childMap1M:
		err = runChildMap(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "bench: unknown subcommand %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp):
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

var errUsage = errors.New("usage")

// parseLocal parses the flags of the local subcommand. Besides the
// documented flags it accepts two hidden ones for diagnosis: -cpuprofile
// FILE writes a CPU profile of the run (the 1M child writes FILE.map1m),
// and -only a,b runs only the named measures (ceiling, fanout, seq, replay, roundtrip,
// map1m).
func parseLocal(args []string, stderr io.Writer) (localConfig, error) {
	cfg := localConfig{scale: 1}
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Float64Var(&cfg.scale, "scale", cfg.scale, "")
	fs.StringVar(&cfg.dir, "dir", "", "")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "")
	only := fs.String("only", "", "")
	if err := fs.Parse(args); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "bench local: %v\n\n", err)
		}
		fmt.Fprint(stderr, usage)
		return cfg, errUsage
	}
	if fs.NArg() > 0 || cfg.scale <= 0 {
		fmt.Fprintf(stderr, "bench local: -scale must be > 0 and no arguments are taken\n\n%s", usage)
		return cfg, errUsage
	}
	if *only != "" {
		cfg.only = strings.Split(*only, ",")
	}
	return cfg, nil
}
