package sweep

import (
	"context"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/batonhq/baton"
)

func TestSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rt, err := baton.Open(ctx, baton.Config{DB: filepath.Join(t.TempDir(), "baton.db"), LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()

	out := t.TempDir()
	p := Params{Out: out, Size: 48, Noise: 40, Radii: []int{0, 1, 2}, Contrasts: []float64{1, 1.2}}
	sum, info, err := Flow.Execute(ctx, rt, p)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "COMPLETED" {
		t.Fatalf("run %s is %s, want COMPLETED", info.ID, info.State)
	}
	const settings, images = 3 * 2, 3
	if sum.Outputs != settings*images {
		t.Errorf("%d outputs, want %d", sum.Outputs, settings*images)
	}
	pngs, _ := filepath.Glob(filepath.Join(out, "*.png"))
	if len(pngs) != settings*images {
		t.Errorf("%d PNG files, want %d", len(pngs), settings*images)
	}

	f, err := os.Open(sum.Report)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+settings { // a header, then one row per setting
		t.Fatalf("report has %d rows, want %d: %q", len(rows), 1+settings, rows)
	}
	if rows[1][0] != "1" || rows[len(rows)-1][0] != "6" {
		t.Errorf("report not ranked: %q", rows)
	}
	// Blurring a noisy smooth gradient always brings it closer to the
	// noise-free image.
	if s := sum.BestPerImage["gradient"]; s.Radius == 0 {
		t.Errorf("best setting for the gradient is %+v, want some blur", s)
	}
	if sum.Best.MeanPSNR <= 0 || sum.Best.MeanPSNR < sum.Best.MinPSNR {
		t.Errorf("best %+v", sum.Best)
	}
}
