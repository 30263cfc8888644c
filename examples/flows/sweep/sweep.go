// Package sweep is a parameter sweep over an image-filter pipeline, run by
// Baton.
//
// Flow renders a few synthetic grayscale images (a gradient, a disc, a
// checkerboard) with seeded noise, then tries every combination of a box
// blur radius and a contrast factor on every image: one task per (image,
// setting) pair, all running in parallel. Each task writes its PNG and
// returns only small data: the file's path and quality metrics. A last task
// ranks the settings by how close their output is to the noise-free image
// (PSNR) and writes report.csv.
//
// Image generation is cached: run the sweep again, even with another grid,
// and the images come from the cache (their task runs are CACHED). The
// command in examples/sweep runs Flow.
package sweep

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/batonhq/baton"
)

// Params are the flow's parameters; lists are given as JSON on the command
// line: --param radii=[0,1,2].
type Params struct {
	Out       string    `json:"out" doc:"directory for the filtered PNGs and report.csv"`
	Size      int       `json:"size" doc:"width and height of the synthetic images, in pixels"`
	Noise     float64   `json:"noise" doc:"standard deviation of the Gaussian noise added to the images (0-255)"`
	Radii     []int     `json:"radii" doc:"box blur radii to try (0: no blur)"`
	Contrasts []float64 `json:"contrasts" doc:"contrast factors applied after the blur (1: unchanged)"`
}

// Flow is the "sweep" flow. Its default output directory is a fixed
// directory under os.TempDir, whatever the working directory of the process
// that runs the flow.
var Flow = baton.Flow("sweep", runSweep,
	baton.Description("Sweep blur radius x contrast over synthetic noisy images and rank the settings by PSNR"),
	baton.Defaults(Params{
		Out:       filepath.Join(os.TempDir(), "baton-sweep"),
		Size:      96,
		Noise:     40,
		Radii:     []int{0, 1, 2, 3, 4},
		Contrasts: []float64{0.8, 1, 1.25},
	}),
)

// Summary is the flow's result.
type Summary struct {
	Report       string             `json:"report"`
	Outputs      int                `json:"outputs"`
	Best         Ranked             `json:"best"`
	BestPerImage map[string]Setting `json:"best_per_image"`
}

func runSweep(ctx baton.Context, p Params) (Summary, error) {
	if p.Out == "" || p.Size < 8 || len(p.Radii) == 0 || len(p.Contrasts) == 0 {
		return Summary{}, baton.Permanent(fmt.Errorf("invalid parameters %+v: need out, size >= 8 and at least one radius and contrast", p))
	}

	// 1. Render the source images, in parallel. Map returns one future per
	// item; WaitAll collects the results in order.
	var specs []ImageSpec
	for i, shape := range []string{"gradient", "disc", "checker"} {
		specs = append(specs, ImageSpec{Shape: shape, Size: p.Size, Noise: p.Noise, Seed: uint64(i + 1)})
	}
	sources, err := baton.WaitAll(ctx, generate.Map(ctx, specs))
	if err != nil {
		return Summary{}, err
	}

	// 2. The grid: one job per (image, setting). The flow decides what to
	// run; the tasks do the work.
	var jobs []Job
	for _, src := range sources {
		for _, r := range p.Radii {
			for _, c := range p.Contrasts {
				jobs = append(jobs, Job{Image: src, Setting: Setting{Radius: r, Contrast: c}, Dir: p.Out})
			}
		}
	}
	baton.Logger(ctx).Info("sweeping", "images", len(sources), "settings", len(p.Radii)*len(p.Contrasts), "jobs", len(jobs))
	results, err := baton.WaitAll(ctx, filter.Map(ctx, jobs))
	if err != nil {
		return Summary{}, err
	}

	// 3. Rank the settings and write the report.
	rep, err := report.Run(ctx, ReportInput{Dir: p.Out, Results: results})
	if err != nil {
		return Summary{}, err
	}
	return Summary{Report: rep.Path, Outputs: len(results), Best: rep.Ranking[0], BestPerImage: rep.BestPerImage}, nil
}

// --------------------------------------------------------------- generate

// ImageSpec describes a synthetic image.
type ImageSpec struct {
	Shape string  `json:"shape"` // gradient, disc or checker
	Size  int     `json:"size"`
	Noise float64 `json:"noise"`
	Seed  uint64  `json:"seed"`
}

// Source is a rendered image: the noise-free reference and the noisy image
// that the filters get, both PNG-encoded (a few KB at the default size).
type Source struct {
	Name  string `json:"name"`
	Clean []byte `json:"clean"` // []byte is base64 in JSON
	Noisy []byte `json:"noisy"`
}

// generate renders one image. It is cached: a later run (of this flow or
// any other) that asks for the same ImageSpec gets the recorded result
// without running the task. Bump Version when the drawing code changes, so
// that old images are not reused. The result holds the pixels themselves
// rather than the path of a file, so a cached result stays valid even when
// the output directory has been deleted since.
var generate = baton.Task("generate-image", func(ctx context.Context, spec ImageSpec) (Source, error) {
	n := spec.Size
	clean := image.NewGray(image.Rect(0, 0, n, n))
	for y := range n {
		for x := range n {
			clean.SetGray(x, y, color.Gray{Y: shade(spec.Shape, x, y, n)})
		}
	}
	rng := rand.New(rand.NewPCG(spec.Seed, 0))
	noisy := image.NewGray(clean.Rect)
	for i, v := range clean.Pix {
		noisy.Pix[i] = clamp(float64(v) + rng.NormFloat64()*spec.Noise)
	}
	src := Source{Name: spec.Shape}
	var err error
	if src.Clean, err = encodePNG(clean); err != nil {
		return Source{}, err
	}
	if src.Noisy, err = encodePNG(noisy); err != nil {
		return Source{}, err
	}
	baton.Logger(ctx).Info("rendered", "image", spec.Shape, "size", n, "png_bytes", len(src.Clean)+len(src.Noisy))
	return src, nil
}, baton.Cache(baton.CachePolicy{Version: "v1"}))

// shade is the noise-free gray level of pixel (x, y) of an n×n image.
func shade(shape string, x, y, n int) uint8 {
	switch shape {
	case "gradient": // dark to light, left to right
		return uint8(255 * x / (n - 1))
	case "disc": // a light disc on a dark background
		dx, dy := float64(x-n/2), float64(y-n/2)
		if math.Hypot(dx, dy) < float64(n)/3 {
			return 200
		}
		return 40
	default: // checker: 8×8 squares
		if (x*8/n+y*8/n)%2 == 0 {
			return 220
		}
		return 30
	}
}

// ----------------------------------------------------------------- filter

// Setting is one point of the grid.
type Setting struct {
	Radius   int     `json:"radius"`
	Contrast float64 `json:"contrast"`
}

// Job is one filter run: an image and a setting.
type Job struct {
	Image   Source  `json:"image"`
	Setting Setting `json:"setting"`
	Dir     string  `json:"dir"`
}

// Result is what a filter run returns: small data, not pixels.
type Result struct {
	Image   string  `json:"image"`
	Setting Setting `json:"setting"`
	Path    string  `json:"path"`
	PSNR    float64 `json:"psnr_db"`     // vs the noise-free image; higher is better
	Mean    float64 `json:"mean"`        // mean intensity, 0-255
	Edges   float64 `json:"edge_energy"` // mean Sobel gradient magnitude
}

// filter applies the pipeline (box blur, then contrast) to one image, writes
// the PNG and measures it. Map runs many of these at once, bounded by the
// flow's MaxConcurrency (default 64). On a worker, filter runs are queued on
// the "default" work queue, so a sweep spreads over every worker serving it;
// in a local run the queue is ignored.
var filter = baton.Task("filter", func(ctx context.Context, job Job) (Result, error) {
	noisy, err := decodeGray(job.Image.Noisy)
	if err != nil {
		return Result{}, baton.Permanent(err) // a corrupt input stays corrupt
	}
	clean, err := decodeGray(job.Image.Clean)
	if err != nil {
		return Result{}, baton.Permanent(err)
	}
	out := adjustContrast(boxBlur(noisy, job.Setting.Radius), job.Setting.Contrast)

	name := fmt.Sprintf("%s_r%d_c%s.png", job.Image.Name, job.Setting.Radius,
		strconv.FormatFloat(job.Setting.Contrast, 'f', -1, 64))
	path := filepath.Join(job.Dir, name)
	data, err := encodePNG(out)
	if err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(job.Dir, 0o755); err != nil {
		return Result{}, err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return Result{}, err
	}
	return Result{
		Image: job.Image.Name, Setting: job.Setting, Path: path,
		PSNR: round2(psnr(clean, out)), Mean: round2(mean(out)), Edges: round2(edgeEnergy(out)),
	}, nil
}, baton.Queue("default"))

// boxBlur averages each pixel with its neighbours within radius r, as two
// one-dimensional passes (rows, then columns), clamping at the borders.
func boxBlur(src *image.Gray, r int) *image.Gray {
	if r <= 0 {
		return src
	}
	n := src.Rect.Dx()
	pass := func(get func(i, j int) float64, set func(i, j int, v float64)) {
		for i := range n {
			for j := range n {
				sum := 0.0
				for k := j - r; k <= j+r; k++ {
					sum += get(i, min(max(k, 0), n-1))
				}
				set(i, j, sum/float64(2*r+1))
			}
		}
	}
	tmp := make([]float64, n*n)
	pass(func(y, x int) float64 { return float64(src.Pix[y*src.Stride+x]) },
		func(y, x int, v float64) { tmp[y*n+x] = v })
	dst := image.NewGray(src.Rect)
	pass(func(x, y int) float64 { return tmp[y*n+x] },
		func(x, y int, v float64) { dst.Pix[y*dst.Stride+x] = clamp(v) })
	return dst
}

// adjustContrast scales each pixel's distance from mid-gray by c.
func adjustContrast(src *image.Gray, c float64) *image.Gray {
	dst := image.NewGray(src.Rect)
	for i, v := range src.Pix {
		dst.Pix[i] = clamp((float64(v)-128)*c + 128)
	}
	return dst
}

// psnr is the peak signal-to-noise ratio of b against reference a, in dB,
// capped at 99 for identical images (JSON has no infinity).
func psnr(a, b *image.Gray) float64 {
	var se float64
	for i := range a.Pix {
		d := float64(a.Pix[i]) - float64(b.Pix[i])
		se += d * d
	}
	if se == 0 {
		return 99
	}
	return min(99, 10*math.Log10(255*255/(se/float64(len(a.Pix)))))
}

func mean(g *image.Gray) float64 {
	var s float64
	for _, v := range g.Pix {
		s += float64(v)
	}
	return s / float64(len(g.Pix))
}

// edgeEnergy is the mean magnitude of the Sobel gradient over the interior.
func edgeEnergy(g *image.Gray) float64 {
	n := g.Rect.Dx()
	at := func(x, y int) float64 { return float64(g.Pix[y*g.Stride+x]) }
	var sum float64
	for y := 1; y < n-1; y++ {
		for x := 1; x < n-1; x++ {
			gx := at(x+1, y-1) + 2*at(x+1, y) + at(x+1, y+1) - at(x-1, y-1) - 2*at(x-1, y) - at(x-1, y+1)
			gy := at(x-1, y+1) + 2*at(x, y+1) + at(x+1, y+1) - at(x-1, y-1) - 2*at(x, y-1) - at(x+1, y-1)
			sum += math.Hypot(gx, gy)
		}
	}
	return sum / float64((n-2)*(n-2))
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func clamp(v float64) uint8 { return uint8(math.Round(min(max(v, 0), 255))) }

func encodePNG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	err := png.Encode(&buf, img)
	return buf.Bytes(), err
}

func decodeGray(data []byte) (*image.Gray, error) {
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decode PNG: %w", err)
	}
	g, ok := img.(*image.Gray)
	if !ok || g.Rect.Dx() != g.Rect.Dy() {
		return nil, errors.New("decode PNG: want a square grayscale image")
	}
	return g, nil
}

// ----------------------------------------------------------------- report

// ReportInput is every filter result.
type ReportInput struct {
	Dir     string   `json:"dir"`
	Results []Result `json:"results"`
}

// Ranked is one setting's score over all images.
type Ranked struct {
	Setting  Setting `json:"setting"`
	MeanPSNR float64 `json:"mean_psnr_db"`
	MinPSNR  float64 `json:"min_psnr_db"`
	Edges    float64 `json:"mean_edge_energy"`
}

// Ranking is what the report task returns.
type Ranking struct {
	Path         string             `json:"path"`
	Ranking      []Ranked           `json:"ranking"`
	BestPerImage map[string]Setting `json:"best_per_image"`
}

// report ranks the settings by mean PSNR over the images and writes
// report.csv, one row per setting, best first.
var report = baton.Task("report", func(ctx context.Context, in ReportInput) (Ranking, error) {
	if len(in.Results) == 0 {
		return Ranking{}, baton.Permanent(errors.New("no results to rank"))
	}
	bySetting := map[Setting][]Result{}
	bestPerImage := map[string]Result{}
	for _, r := range in.Results {
		bySetting[r.Setting] = append(bySetting[r.Setting], r)
		if b, ok := bestPerImage[r.Image]; !ok || r.PSNR > b.PSNR {
			bestPerImage[r.Image] = r
		}
	}
	var ranking []Ranked
	for s, rs := range bySetting {
		rk := Ranked{Setting: s, MinPSNR: math.Inf(1)}
		for _, r := range rs {
			rk.MeanPSNR += r.PSNR / float64(len(rs))
			rk.Edges += r.Edges / float64(len(rs))
			rk.MinPSNR = min(rk.MinPSNR, r.PSNR)
		}
		rk.MeanPSNR, rk.Edges = round2(rk.MeanPSNR), round2(rk.Edges)
		ranking = append(ranking, rk)
	}
	slices.SortFunc(ranking, func(a, b Ranked) int {
		return cmp.Or(cmp.Compare(b.MeanPSNR, a.MeanPSNR), // best first; ties by setting, for a stable report
			cmp.Compare(a.Setting.Radius, b.Setting.Radius), cmp.Compare(a.Setting.Contrast, b.Setting.Contrast))
	})

	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"rank", "radius", "contrast", "mean_psnr_db", "min_psnr_db", "mean_edge_energy"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	for i, rk := range ranking {
		w.Write([]string{strconv.Itoa(i + 1), strconv.Itoa(rk.Setting.Radius),
			strconv.FormatFloat(rk.Setting.Contrast, 'f', -1, 64), f(rk.MeanPSNR), f(rk.MinPSNR), f(rk.Edges)})
	}
	w.Flush()
	path := filepath.Join(in.Dir, "report.csv")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return Ranking{}, err
	}

	out := Ranking{Path: path, Ranking: ranking, BestPerImage: map[string]Setting{}}
	log := baton.Logger(ctx)
	for _, name := range slices.Sorted(maps.Keys(bestPerImage)) {
		r := bestPerImage[name]
		out.BestPerImage[name] = r.Setting
		log.Info("best for image", "image", name, "radius", r.Setting.Radius, "contrast", r.Setting.Contrast, "psnr_db", f(r.PSNR))
	}
	best := ranking[0]
	log.Info("best overall", "radius", best.Setting.Radius, "contrast", best.Setting.Contrast, "mean_psnr_db", f(best.MeanPSNR))
	return out, nil
})
