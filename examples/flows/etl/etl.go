// Package etl is a small extract-transform-load pipeline run by Baton.
//
// Flow extracts a CSV export of orders (generated, deterministic and a
// little messy, like real exports), transforms it (parses, cleans,
// aggregates the revenue per customer) and loads the result into a
// "warehouse": a directory that receives report.json and customers.csv. The
// warehouse is flaky on purpose: it rejects the first connections of every
// load, and the load task succeeds thanks to its retry policy.
//
// Each step is a task: its input and result are recorded, so retrying a
// failed run reuses the steps that completed and starts again at the one
// that failed. The command in examples/etl runs Flow.
package etl

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/batonhq/baton"
)

// Params are the flow's parameters. On the command line, set them with
// --param rows=5000 (the JSON names); `flows` shows them with their doc.
type Params struct {
	Rows   int    `json:"rows" doc:"number of orders to extract"`
	Seed   uint64 `json:"seed" doc:"seed of the generated orders (same seed, same data)"`
	Out    string `json:"out" doc:"warehouse directory that receives report.json and customers.csv"`
	Outage int    `json:"outage" doc:"how many connections the flaky warehouse rejects before it accepts one"`
}

// Flow is the "etl" flow. Defaults are what `go run ./examples/etl` uses;
// command line parameters override them field by field. The default
// warehouse is a fixed directory under os.TempDir, whatever the working
// directory of the process that runs the flow.
var Flow = baton.Flow("etl", runETL,
	baton.Description("Extract generated orders, clean and aggregate them per customer, load a report"),
	baton.Defaults(Params{Rows: 1000, Seed: 42, Out: filepath.Join(os.TempDir(), "baton-etl"), Outage: 2}),
)

// Summary is the flow's result, printed as JSON when the run completes.
type Summary struct {
	RowsRead     int            `json:"rows_read"`
	RowsKept     int            `json:"rows_kept"`
	Dropped      map[string]int `json:"dropped"`
	Customers    int            `json:"customers"`
	Revenue      string         `json:"revenue"`
	Files        []string       `json:"files"`
	LoadAttempts int            `json:"load_attempts"`
}

// runETL is the flow function. It only calls tasks and combines their
// results: anything with side effects (reading, writing, the network) goes
// in a task, where it is recorded and retried.
func runETL(ctx baton.Context, p Params) (Summary, error) {
	log := baton.Logger(ctx) // records are stored with the run: see `runs logs`
	if p.Out == "" {
		// Permanent: no retry would make an empty parameter valid.
		return Summary{}, baton.Permanent(errors.New("parameter out must name a directory"))
	}

	raw, err := extract.Run(ctx, ExtractInput{Rows: p.Rows, Seed: p.Seed})
	if err != nil {
		return Summary{}, err
	}
	report, err := transform.Run(ctx, raw)
	if err != nil {
		return Summary{}, err
	}
	log.Info("transformed", "rows_read", report.RowsRead, "rows_kept", report.RowsKept, "customers", len(report.Customers))

	loaded, err := load.Run(ctx, LoadInput{Dir: p.Out, Outage: p.Outage, Report: report})
	if err != nil {
		return Summary{}, err
	}
	var revenue int64
	for _, c := range report.Customers {
		revenue += c.RevenueCents
	}
	log.Info("loaded", "files", loaded.Files, "attempts", loaded.Attempt)
	return Summary{
		RowsRead: report.RowsRead, RowsKept: report.RowsKept, Dropped: report.Dropped,
		Customers: len(report.Customers), Revenue: money(revenue),
		Files: loaded.Files, LoadAttempts: loaded.Attempt,
	}, nil
}

// ---------------------------------------------------------------- extract

// ExtractInput says which export to produce.
type ExtractInput struct {
	Rows int    `json:"rows"`
	Seed uint64 `json:"seed"`
}

// extract stands for a query against a source system. It returns the CSV
// text itself: a result is recorded in Baton's store (large ones in its blob
// directory), so keep results to what the next step needs. For really large
// data, write a file and return its path instead.
var extract = baton.Task("extract", func(ctx context.Context, in ExtractInput) (string, error) {
	customers := []string{"Acme Corp", "Globex", "Initech", "Umbrella", "Stark Industries", "Wayne Enterprises"}
	rng := rand.New(rand.NewPCG(in.Seed, 0)) // seeded: the same input gives the same export
	day0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"order_id", "ordered_at", "customer", "amount"})
	var prev []string
	for i := range in.Rows {
		if prev != nil && rng.IntN(50) == 0 { // ~2%: the export repeats a row
			w.Write(prev)
			continue
		}
		customer := customers[rng.IntN(len(customers))]
		switch rng.IntN(10) { // inconsistent spelling, as typed by humans
		case 0:
			customer = strings.ToUpper(customer)
		case 1:
			customer = "  " + strings.ToLower(customer) + " "
		}
		amount := fmt.Sprintf("%.2f", 5+rng.Float64()*495)
		switch rng.IntN(40) { // a few broken rows
		case 0:
			customer = ""
		case 1:
			amount = "N/A"
		case 2:
			amount = "-" + amount
		}
		row := []string{
			fmt.Sprintf("ORD-%05d", i+1),
			day0.AddDate(0, 0, rng.IntN(90)).Format(time.DateOnly),
			customer, amount,
		}
		w.Write(row)
		prev = row
	}
	w.Flush()
	baton.Logger(ctx).Info("extracted orders", "rows", in.Rows, "bytes", buf.Len())
	return buf.String(), w.Error()
})

// -------------------------------------------------------------- transform

// Report is the cleaned, aggregated data.
type Report struct {
	RowsRead  int             `json:"rows_read"`
	RowsKept  int             `json:"rows_kept"`
	Dropped   map[string]int  `json:"dropped"` // reason -> rows
	Customers []CustomerTotal `json:"customers"`
}

// CustomerTotal aggregates one customer's orders. Money is in integer cents.
type CustomerTotal struct {
	Customer     string `json:"customer"`
	Orders       int    `json:"orders"`
	RevenueCents int64  `json:"revenue_cents"`
	FirstOrder   string `json:"first_order"`
	LastOrder    string `json:"last_order"`
}

// transform is pure computation: it needs no retries. Malformed input is a
// Permanent error, since retrying would fail the same way.
var transform = baton.Task("transform", func(ctx context.Context, text string) (Report, error) {
	r := csv.NewReader(strings.NewReader(text))
	header, err := r.Read()
	if err != nil {
		return Report{}, baton.Permanent(fmt.Errorf("read CSV header: %w", err))
	}
	if !slices.Equal(header, []string{"order_id", "ordered_at", "customer", "amount"}) {
		return Report{}, baton.Permanent(fmt.Errorf("unexpected CSV header %q", header))
	}

	rep := Report{Dropped: map[string]int{}}
	seen := map[string]bool{}
	totals := map[string]*CustomerTotal{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Report{}, baton.Permanent(fmt.Errorf("read CSV: %w", err))
		}
		rep.RowsRead++
		id, date, customer := rec[0], rec[1], normalizeName(rec[2])
		cents, amountErr := parseCents(rec[3])
		switch {
		case seen[id]:
			rep.Dropped["duplicate"]++
			continue
		case customer == "":
			rep.Dropped["no customer"]++
			continue
		case amountErr != nil:
			rep.Dropped["bad amount"]++
			continue
		case cents <= 0:
			rep.Dropped["non-positive amount"]++
			continue
		}
		seen[id] = true
		rep.RowsKept++
		t := totals[customer]
		if t == nil {
			t = &CustomerTotal{Customer: customer, FirstOrder: date, LastOrder: date}
			totals[customer] = t
		}
		t.Orders++
		t.RevenueCents += cents
		t.FirstOrder, t.LastOrder = min(t.FirstOrder, date), max(t.LastOrder, date) // ISO dates sort as text
	}
	for _, t := range totals {
		rep.Customers = append(rep.Customers, *t)
	}
	slices.SortFunc(rep.Customers, func(a, b CustomerTotal) int { // biggest customers first
		return cmp.Or(cmp.Compare(b.RevenueCents, a.RevenueCents), cmp.Compare(a.Customer, b.Customer))
	})
	for _, reason := range slices.Sorted(maps.Keys(rep.Dropped)) {
		baton.Logger(ctx).Warn("dropped rows", "reason", reason, "rows", rep.Dropped[reason])
	}
	return rep, nil
})

// normalizeName trims a customer name and gives it title case, so that
// "ACME CORP" and " acme corp " count as "Acme Corp".
func normalizeName(s string) string {
	words := strings.Fields(strings.ToLower(s))
	for i, w := range words {
		r := []rune(w)
		r[0] = unicode.ToUpper(r[0])
		words[i] = string(r)
	}
	return strings.Join(words, " ")
}

// parseCents parses an amount such as "12.34" into cents.
func parseCents(s string) (int64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, err
	}
	return int64(f*100 + 0.5*sign(f)), nil
}

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}

func money(cents int64) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }

// ------------------------------------------------------------------- load

// LoadInput is what the load step writes, and where.
type LoadInput struct {
	Dir    string `json:"dir"`
	Outage int    `json:"outage"`
	Report Report `json:"report"`
}

// Loaded says what the load step wrote.
type Loaded struct {
	Files   []string `json:"files"`
	Attempt int      `json:"attempt"` // the attempt that succeeded, as counted by the warehouse
}

// load writes the report. The warehouse it talks to is flaky, so the task
// retries: up to 3 more attempts, 200ms apart. Setting RetryDelay replaces
// the default policy (1s, doubling, with jitter), so these delays are
// constant; add baton.Backoff for exponential ones.
//
// A task that is retried must be safe to run again: load writes each file
// to a temporary name and renames it, so a failed attempt never leaves a
// half-written report behind.
var load = baton.Task("load", func(ctx context.Context, in LoadInput) (Loaded, error) {
	log := baton.Logger(ctx)
	if err := os.MkdirAll(in.Dir, 0o755); err != nil {
		return Loaded{}, err
	}
	attempt, err := connectWarehouse(in.Dir, in.Outage)
	if err != nil {
		log.Warn("warehouse unavailable", "attempt", attempt, "err", err)
		return Loaded{}, err // an ordinary error: retried by the policy
	}

	js, err := json.MarshalIndent(in.Report, "", "  ")
	if err != nil {
		return Loaded{}, baton.Permanent(err)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"customer", "orders", "revenue", "first_order", "last_order"})
	for _, c := range in.Report.Customers {
		w.Write([]string{c.Customer, strconv.Itoa(c.Orders), money(c.RevenueCents), c.FirstOrder, c.LastOrder})
	}
	w.Flush()

	var files []string
	for name, data := range map[string][]byte{"report.json": js, "customers.csv": buf.Bytes()} {
		path := filepath.Join(in.Dir, name)
		if err := writeFileAtomic(path, data); err != nil {
			return Loaded{}, err
		}
		files = append(files, path)
	}
	slices.Sort(files)
	log.Info("report loaded", "dir", in.Dir, "attempt", attempt)
	return Loaded{Files: files, Attempt: attempt}, nil
}, baton.Retries(3), baton.RetryDelay(200*time.Millisecond))

// connectWarehouse simulates a warehouse that rejects the first `outage`
// connections of each load. It counts attempts in a marker file in dir,
// which it removes once it lets one through, so every run sees the same
// outage whatever the process. It returns the attempt number.
func connectWarehouse(dir string, outage int) (int, error) {
	marker := filepath.Join(dir, ".warehouse-outage")
	failed := 0
	if b, err := os.ReadFile(marker); err == nil {
		failed, _ = strconv.Atoi(string(b))
	}
	if failed < outage {
		if err := os.WriteFile(marker, []byte(strconv.Itoa(failed+1)), 0o644); err != nil {
			return failed + 1, err
		}
		return failed + 1, errors.New("connect to warehouse: connection refused (simulated outage)")
	}
	if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return failed + 1, err
	}
	return failed + 1, nil
}

// writeFileAtomic writes data to a temporary file next to path, then renames
// it to path. The temporary name is unique, so runs that share a warehouse
// directory (in a long-lived worker, say) never write the same file at once.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644) // CreateTemp makes the file 0600
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
