package cli

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Baton runs the `baton` command line with args (without the program name)
// and returns the process exit code: ExitOK, ExitFailed, or ExitUsage for bad
// input, including cobra's own errors (unknown command or flag, wrong number
// of arguments). Errors are printed to env.Stderr as "baton: <error>".
func Baton(ctx context.Context, args []string, env *Env) int {
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if env.Command == "" {
		env.Command = SelfCommand("baton")
	}
	root := &cobra.Command{
		Use:   "baton",
		Short: "Run the Baton server and inspect and manage the runs of Baton workflows",
		Long: "baton serves Baton's API (server, dev) and inspects and manages flow runs.\n\n" +
			"Commands read the server given by --server, else $BATON_SERVER; without one, they read\n" +
			"the store directly: the file (or postgres:// URL) given by --db, else $BATON_DB, else\n" +
			"$BATON_HOME/baton.db, else ~/.baton/baton.db. Creating, cancelling and retrying runs\n" +
			"needs a server: start one on this machine with: baton dev",
		// No Args: cobra's own check reports unknown commands (with
		// suggestions), which Baton maps to a usage error.
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&env.Server, "server", env.Server,
		"base `URL` of a Baton server to talk to, such as http://127.0.0.1:8420 (default $BATON_SERVER; none: read the store)")
	root.AddCommand(RunsCommand(env), WorkersCommand(env), QueuesCommand(env), RetentionCommand(env),
		ServerCommand(env), DevCommand(env), VersionCommand(env))
	return execute(ctx, root, args, env)
}

// batonCobraUsage recognizes the errors cobra returns itself, before a
// command runs, for bad command lines.
func batonCobraUsage(err error) bool {
	msg := err.Error()
	for _, prefix := range []string{"unknown command", "unknown flag", "unknown shorthand flag",
		"accepts ", "requires at least", "requires at most", "accepts between", "invalid argument",
		"required flag", "flag needs an argument", "bad flag syntax", "if any flags in the group"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

// SelfCommand returns how to invoke the running program again, for the
// commands that hints print: name when it is an installed binary, or
// "go run ./cmd/baton" (the main package relative to the module root) when
// it runs from a `go run` build, which puts no binary on PATH.
func SelfCommand(name string) string {
	exe, err := os.Executable()
	if err != nil || !IsGoRunBuild(exe) {
		return name
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return name
	}
	return GoRunCommand(bi.Path, bi.Main.Path, name)
}

// goBuildHash is the name of a cached `go run` executable's directory.
var goBuildHash = regexp.MustCompile(`^[0-9a-f]{64}-d$`)

// IsGoRunBuild reports whether exe is an executable that `go run` built: in
// a temporary go-build directory ($TMPDIR/go-build123/b001/exe/NAME) or in
// the build cache ($GOCACHE/xx/HASH-d/NAME).
func IsGoRunBuild(exe string) bool {
	dir := filepath.Dir(filepath.Clean(exe))
	if goBuildHash.MatchString(filepath.Base(dir)) {
		return true
	}
	for d := dir; ; d = filepath.Dir(d) {
		if strings.HasPrefix(filepath.Base(d), "go-build") {
			return true
		}
		if filepath.Dir(d) == d {
			return false
		}
	}
}

// GoRunCommand is the `go run` command of the main package pkg of module
// mod, run from the module's root: "go run ./cmd/baton", "go run .". A
// package outside mod is named in full; without a package, name is returned.
func GoRunCommand(pkg, mod, name string) string {
	switch {
	case pkg == "" || pkg == "command-line-arguments" || strings.HasSuffix(pkg, ".test"):
		return name
	case pkg == mod:
		return "go run ."
	case mod != "" && strings.HasPrefix(pkg, mod+"/"):
		return "go run ./" + strings.TrimPrefix(pkg, mod+"/")
	}
	return "go run " + pkg
}
