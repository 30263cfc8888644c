// Package deptest checks that the import graph keeps the architecture's
// layering: the engine knows only the store interface, nothing below the
// command line imports it, and a user's program (package baton) links only
// what an allow-list names: no server, no PostgreSQL driver.
package deptest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/batonhq/baton"

// deps lists the packages pkg links, for GOOS goos (empty: this one);
// with nonStd, only those outside the standard library.
func deps(t *testing.T, pkg, goos string, nonStd bool) []string {
	t.Helper()
	args := []string{"list", "-deps"}
	if nonStd {
		args = append(args, "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	if goos != "" {
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64")
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s (GOOS=%s): %v", pkg, goos, err)
	}
	return strings.Fields(string(out))
}

// under reports whether pkg is prefix or a package below it.
func under(pkg, prefix string) bool {
	return pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}

func TestLayering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pkg       string
		forbidden []string
	}{
		{mod + "/internal/engine", []string{mod + "/internal/store/sqlite", mod + "/internal/cli", "modernc.org/sqlite", "github.com/jackc/pgx", "github.com/spf13/cobra", "net/http"}},
		{mod + "/internal/store", []string{mod + "/internal/engine", "modernc.org/sqlite"}},
		{mod + "/internal/store/sqlite", []string{mod + "/internal/engine", mod + "/internal/cli"}},
		{mod + "/internal/params", []string{mod + "/internal/engine", mod + "/internal/store"}},
		{mod + "/internal/cli/progcmd", []string{mod + "/internal/server", mod + "/internal/store/postgres", "github.com/jackc/pgx"}},
		{mod + "/client", []string{mod + "/internal/server", mod + "/internal/engine", mod + "/internal/store", mod + "/internal/api", "modernc.org/sqlite", "github.com/jackc/pgx"}},
		{mod + "/apitype", []string{mod + "/internal", mod + "/client"}},
		{mod + "/fault", []string{mod + "/internal"}},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			t.Parallel()
			for _, d := range deps(t, tt.pkg, "", false) {
				for _, f := range tt.forbidden {
					if under(d, f) {
						t.Errorf("%s imports %s", tt.pkg, d)
					}
				}
			}
		})
	}
}

// sdkAllowed is everything outside the standard library that a user's
// program (package baton, with baton.Main) may link, each with why. A new
// dependency of the SDK must be added here, deliberately.
var sdkAllowed = []struct{ prefix, why string }{
	{mod, "the SDK itself"},
	{mod + "/apitype", "the API's JSON documents"},
	{mod + "/client", "the HTTP client, for runs --server"},
	{mod + "/fault", "the errors the SDK re-exports"},
	{mod + "/internal/api", "the conversion of records into the API's documents, for the runs commands"},
	{mod + "/internal/blob", "large results beside the embedded store"},
	{mod + "/internal/cli", "the program's command line (cli, cli/progcmd, cli/runscmd, cli/deploycmd only: see sdkForbidden)"},
	{mod + "/internal/engine", "the engine that runs flows"},
	{mod + "/internal/params", "flow parameters: flags, validation, JSON Schema"},
	{mod + "/internal/remote", "the worker's side of the worker and engine protocols"},
	{mod + "/internal/transport", "HTTP requests with failover, for client and remote"},
	{mod + "/internal/store", "the store interface and the embedded SQLite backend (store/sqlite only: see sdkForbidden)"},
	{mod + "/internal/storeopen", "opening the store --db names (SQLite built in, other backends when linked)"},
	{mod + "/internal/clock", "the injected clock every timed decision reads"},
	{mod + "/internal/version", "the version command"},
	{mod + "/internal/worker", "the worker command"},
	{"github.com/google/uuid", "run and task-run IDs (UUIDv7)"},
	{"github.com/robfig/cron/v3", "internal/schedule: cron expressions of baton.Deploy, validated when declared and registered by deploy and worker"},
	{"github.com/teambition/rrule-go", "internal/schedule: RFC 5545 rules of baton.Deploy, as for cron"},
	{"github.com/jonboulle/clockwork", "internal/clock: the clock interface and its fake for tests"},
	{"github.com/invopop/jsonschema", "internal/params: reads the jsonschema struct tags of parameter and input types"},
	{"github.com/pb33f/ordered-map/v2", "invopop/jsonschema's ordered properties"},
	{"github.com/bahlo/generic-list-go", "pb33f/ordered-map"},
	{"github.com/buger/jsonparser", "pb33f/ordered-map's JSON decoding"},
	{"go.yaml.in/yaml/v4", "pb33f/ordered-map's YAML support, linked with it"},
	{"github.com/santhosh-tekuri/jsonschema/v6", "internal/params: validates parameters and inputs against their JSON Schema"},
	{"golang.org/x/text", "santhosh-tekuri/jsonschema's messages (message printer, languages)"},
	{"github.com/spf13/cobra", "the command line"},
	{"github.com/spf13/pflag", "cobra's flags"},
	{"github.com/inconshreveable/mousetrap", "cobra, on Windows"},
	{"modernc.org", "the embedded SQLite (pure Go) and its C runtime"},
	{"github.com/dustin/go-humanize", "modernc.org/sqlite"},
	{"github.com/remyoudompheng/bigfft", "modernc.org/mathutil, for SQLite"},
	{"github.com/ncruces/go-strftime", "modernc.org/libc, on Darwin and Windows"},
	{"github.com/mattn/go-isatty", "modernc.org/libc, on Darwin and Windows"},
	{"golang.org/x/sys", "modernc.org/libc"},
}

// sdkForbidden are packages below allowed prefixes that a user's program
// must still not link.
var sdkForbidden = []struct{ prefix, why string }{
	{mod + "/internal/server", "the API server: only the baton command serves"},
	{mod + "/internal/cli/servecmd", "baton server and baton dev"},
	{mod + "/internal/cli/batoncmd", "the baton command's own commands"},
	{mod + "/internal/store/postgres", "the PostgreSQL backend: linked only by importing github.com/batonhq/baton/postgres"},
	{mod + "/postgres", "the PostgreSQL backend: linked only by importing it"},
	{mod + "/internal/retention", "deleting old runs, a server and baton-command job"},
	{mod + "/examples", "the bundled examples"},
	{"gonum.org/v1/gonum", "linear algebra of the campaign example's optimizer (examples/flows/campaign/bo) only"},
}

// TestSDKDependencies checks the packages a user's program links (package
// baton's dependency closure, on Linux, Darwin and Windows) against
// sdkAllowed: no server, no PostgreSQL driver, nothing unexpected.
func TestSDKDependencies(t *testing.T) {
	t.Parallel()
	for _, goos := range []string{"linux", "darwin", "windows"} {
		t.Run(goos, func(t *testing.T) {
			t.Parallel()
			for _, d := range deps(t, mod, goos, true) {
				if d == "C" {
					continue
				}
				allowed := false
				for _, a := range sdkAllowed {
					allowed = allowed || under(d, a.prefix)
				}
				for _, f := range sdkForbidden {
					if under(d, f.prefix) {
						t.Errorf("package baton links %s (%s)", d, f.why)
						allowed = true // reported once
					}
				}
				if !allowed {
					t.Errorf("package baton links %s, which sdkAllowed does not list: add it there with why, "+
						"or keep it out of the SDK", d)
				}
			}
		})
	}
}

// TestBatonCommandLinksEverything guards the test above from passing
// vacuously: the baton command does link the server and PostgreSQL.
func TestBatonCommandLinksEverything(t *testing.T) {
	t.Parallel()
	got := map[string]bool{}
	for _, d := range deps(t, mod+"/cmd/baton", "", false) {
		got[d] = true
	}
	for _, want := range []string{mod + "/internal/server", mod + "/internal/store/postgres", "github.com/jackc/pgx/v5"} {
		if !got[want] {
			t.Errorf("cmd/baton does not link %s", want)
		}
	}
}
