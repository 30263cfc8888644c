package etl

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/cli/progcmd"
)

func TestETL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rt, err := baton.Open(ctx, baton.Config{DB: filepath.Join(t.TempDir(), "baton.db"), LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()

	// Execute does not apply the flow's Defaults: pass every parameter.
	out := t.TempDir()
	sum, info, err := Flow.Execute(ctx, rt, Params{Rows: 300, Seed: 7, Out: out, Outage: 2})
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "COMPLETED" {
		t.Fatalf("run %s is %s, want COMPLETED", info.ID, info.State)
	}
	// Two simulated outages, so the load succeeded on its third attempt.
	if sum.LoadAttempts != 3 {
		t.Errorf("load succeeded on attempt %d, want 3", sum.LoadAttempts)
	}
	if _, err := os.Stat(filepath.Join(out, ".warehouse-outage")); !os.IsNotExist(err) {
		t.Errorf("outage marker left behind: %v", err)
	}

	dropped := 0
	for _, n := range sum.Dropped {
		dropped += n
	}
	if sum.RowsRead != 300 || sum.RowsKept+dropped != sum.RowsRead || dropped == 0 {
		t.Errorf("rows read %d, kept %d, dropped %v", sum.RowsRead, sum.RowsKept, sum.Dropped)
	}

	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	// Six customers, however their names were spelt in the export.
	if len(rep.Customers) != 6 || sum.Customers != 6 {
		t.Fatalf("%d customers in the report, want 6: %+v", len(rep.Customers), rep.Customers)
	}
	orders := 0
	for i, c := range rep.Customers {
		orders += c.Orders
		if i > 0 && c.RevenueCents > rep.Customers[i-1].RevenueCents {
			t.Errorf("customers not sorted by revenue: %+v", rep.Customers)
		}
	}
	if orders != sum.RowsKept {
		t.Errorf("%d orders in the report, want %d", orders, sum.RowsKept)
	}
	if _, err := os.Stat(filepath.Join(out, "customers.csv")); err != nil {
		t.Error(err)
	}
}

// TestREADMEDescribesTheDefaultOutage keeps the README's description of
// the example true: with the default parameters the load step fails twice
// and succeeds on its third attempt.
func TestREADMEDescribesTheDefaultOutage(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var p Params
	defs := progcmd.ProgramOf("", Flow).Flows
	if err := json.Unmarshal(defs[0].Defaults, &p); err != nil {
		t.Fatal(err)
	}
	if p.Outage != 2 {
		t.Fatalf("default outage %d: update the README's description of examples/etl", p.Outage)
	}
	for _, want := range []string{"fails on its first two attempts and succeeds on the third", "fails twice and succeeds on its third attempt"} {
		if !strings.Contains(strings.Join(strings.Fields(string(readme)), " "), want) {
			t.Errorf("README.md does not say the ETL example's load step %q", want)
		}
	}
}
