package main

import (
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Colours and sizes of the timeline picture.
var (
	rotationColor = color.RGBA{R: 200, A: 255}
	publishColor  = color.RGBA{G: 140, B: 60, A: 255}
	seriesColors  = []color.Color{
		color.RGBA{R: 30, G: 90, B: 200, A: 255},
		color.RGBA{R: 220, G: 40, B: 40, A: 255},
		color.RGBA{R: 120, G: 120, B: 120, A: 255},
		color.RGBA{R: 240, G: 150, B: 0, A: 255},
	}
)

const (
	pictureWidth  = 14 * vg.Inch
	pictureHeight = 12 * vg.Inch
	pictureDPI    = 100
	minLogMS      = 0.01 // floor of the log scale, in milliseconds
)

// eventRows are the rows of the event panel, bottom to top: the bench's
// own marks first, then gopqr's event kinds.
var eventRows = []string{
	"rotation (database)", "store publishes", "refreshed", "login rejected",
	"fallback", "every login rejected", "recovered", "refresh failed", "login retired",
}

// drawTimeline writes the timeline as a picture; the file name's extension
// picks PNG or SVG.
func drawTimeline(tl *timeline, path string) error {
	plots, err := timelinePlots(tl)
	if err != nil {
		return err
	}
	canvas, out, err := newPicture(path)
	if err != nil {
		return err
	}
	grid := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		grid[i] = []*plot.Plot{p}
	}
	pad := 4 * vg.Millimeter
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadTop: pad, PadBottom: pad,
		PadLeft: pad, PadRight: 2 * pad, PadY: pad}
	cells := plot.Align(grid, tiles, draw.New(canvas))
	for i, p := range plots {
		p.Draw(cells[i][0])
	}
	return writeFile(path, out)
}

// newPicture returns a canvas for path's format and what writes it.
func newPicture(path string) (vg.CanvasSizer, io.WriterTo, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png":
		c := vgimg.NewWith(vgimg.UseWH(pictureWidth, pictureHeight), vgimg.UseDPI(pictureDPI))
		return c, vgimg.PngCanvas{Canvas: c}, nil
	case ".svg":
		c := vgsvg.New(pictureWidth, pictureHeight)
		return c, c, nil
	}
	return nil, nil, fmt.Errorf("timeline %s: want a .png or .svg file", path)
}

// writeFile writes what w holds to path.
func writeFile(path string, w io.WriterTo) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// timelinePlots builds the four panels.
func timelinePlots(tl *timeline) ([]*plot.Plot, error) {
	builders := []func(*timeline) (*plot.Plot, error){
		throughputPlot, latencyPlot, countsPlot, eventsPlot,
	}
	end := 0.0
	if n := len(tl.Buckets); n > 0 {
		end = tl.Buckets[n-1].At + tl.Width/1000
	}
	out := make([]*plot.Plot, 0, len(builders))
	for _, build := range builders {
		p, err := build(tl)
		if err != nil {
			return nil, err
		}
		p.X.Min, p.X.Max = 0, end
		p.X.Tick.Marker = plainTicks{}
		p.Legend.XOffs = -6 * vg.Millimeter
		p.Add(&vlines{xs: tl.Changed, style: rotationStyle()})
		p.Add(&vlines{xs: tl.Published, style: publishStyle()})
		p.Add(plotter.NewGrid())
		out = append(out, p)
	}
	return out, nil
}

func rotationStyle() draw.LineStyle {
	return draw.LineStyle{Color: rotationColor, Width: vg.Points(1.2),
		Dashes: []vg.Length{vg.Points(5), vg.Points(3)}}
}

func publishStyle() draw.LineStyle {
	return draw.LineStyle{Color: publishColor, Width: vg.Points(1.2),
		Dashes: []vg.Length{vg.Points(1.5), vg.Points(2.5)}}
}

// throughputPlot shows queries per second, with the picture's title and
// the legend of the vertical lines.
func throughputPlot(tl *timeline) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s, %s rotation: %d workers, lifetime %.0f ms, "+
		"%.0f ms buckets", tl.Contender, tl.Scenario, tl.Workers, tl.Lifetime, tl.Width)
	if tl.Scenario == schemeSingle {
		p.Title.Text += fmt.Sprintf("; the store serves a new password %.1f s late", tl.Delay)
	}
	p.Y.Label.Text = "queries/s"
	p.Y.Tick.Marker = plainTicks{}
	xys, top := series(tl, func(b bucket) (float64, bool) { return b.QPS, true })
	line, err := plotter.NewLine(xys)
	if err != nil {
		return nil, err
	}
	line.Color = seriesColors[0]
	p.Add(line)
	p.Y.Min, p.Y.Max = 0, top*1.35+1
	p.Legend.Top = true
	p.Legend.Add("queries/s", line)
	p.Legend.Add("password changed in the database", &plotter.Line{LineStyle: rotationStyle()})
	p.Legend.Add("store serves the new password", &plotter.Line{LineStyle: publishStyle()})
	return p, nil
}

// latencyPlot shows the p99 latency of the queries that ended in each
// bucket, on a log scale.
func latencyPlot(tl *timeline) (*plot.Plot, error) {
	p := plot.New()
	p.Y.Label.Text = "p99 latency, ms (log)"
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	xys, top := series(tl, func(b bucket) (float64, bool) {
		return max(b.P99, minLogMS), b.Queries > 0
	})
	if len(xys) == 0 {
		xys = plotter.XYs{{X: 0, Y: minLogMS}}
	}
	line, err := plotter.NewLine(xys)
	if err != nil {
		return nil, err
	}
	line.Color = seriesColors[0]
	p.Add(line)
	p.Y.Min, p.Y.Max = minLogMS, max(top*2, 10)
	return p, nil
}

// countsPlot shows failed queries, evictions and new connections per
// bucket.
func countsPlot(tl *timeline) (*plot.Plot, error) {
	p := plot.New()
	p.Y.Label.Text = fmt.Sprintf("per %.0f ms", tl.Width)
	errs := make([]int, len(tl.Buckets))
	for i, b := range tl.Buckets {
		errs[i] = b.Errors
	}
	sets := []struct {
		name string
		ys   []int
	}{
		{"failed queries", errs},
		{"evictions (log hook)", tl.Evictions},
		{"new connections (Stats polls)", tl.Connects},
	}
	top := 1
	for i, s := range sets {
		line, err := plotter.NewLine(countXYs(s.ys, tl.Width/1000))
		if err != nil {
			return nil, err
		}
		line.Color = seriesColors[(i+1)%len(seriesColors)]
		p.Add(line)
		p.Legend.Add(s.name, line)
		top = max(top, maxInt(s.ys))
	}
	p.Y.Min, p.Y.Max = 0, float64(top)*1.45
	p.Y.Tick.Marker = plainTicks{}
	p.Legend.Top = true
	return p, nil
}

// eventsPlot puts each rotation and each gopqr event on its kind's row.
func eventsPlot(tl *timeline) (*plot.Plot, error) {
	p := plot.New()
	p.Y.Label.Text = "events"
	byKind := map[string][]float64{eventRows[0]: tl.Changed, eventRows[1]: tl.Published}
	for _, m := range tl.Marks {
		byKind[m.Kind] = append(byKind[m.Kind], m.At)
	}
	var ticks []plot.Tick
	for row, kind := range eventRows {
		ticks = append(ticks, plot.Tick{Value: float64(row),
			Label: fmt.Sprintf("%s (%d)", kind, len(byKind[kind]))})
		if err := addEventRow(p, row, byKind[kind]); err != nil {
			return nil, err
		}
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Min, p.Y.Max = -0.6, float64(len(eventRows))-0.4
	p.X.Label.Text = "seconds since the load started"
	p.X.Tick.Marker = plainTicks{}
	return p, nil
}

// glyphs are the mark shapes of the event rows, in turn.
var glyphs = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.CrossGlyph{},
	draw.PlusGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{},
}

// addEventRow adds one row of marks at the given height.
func addEventRow(p *plot.Plot, row int, at []float64) error {
	if len(at) == 0 {
		return nil
	}
	xys := make(plotter.XYs, len(at))
	for i, x := range at {
		xys[i] = plotter.XY{X: x, Y: float64(row)}
	}
	sc, err := plotter.NewScatter(xys)
	if err != nil {
		return err
	}
	sc.GlyphStyle = draw.GlyphStyle{
		Color: rowColor(row), Radius: vg.Points(4), Shape: glyphs[row%len(glyphs)],
	}
	p.Add(sc)
	return nil
}

// rowColor returns the colour of an event row: the vertical lines' colours
// for the bench's own rows, a series colour for gopqr's.
func rowColor(row int) color.Color {
	switch row {
	case 0:
		return rotationColor
	case 1:
		return publishColor
	}
	return seriesColors[row%len(seriesColors)]
}

// series returns the points of the buckets that get keeps, and the
// largest value.
func series(tl *timeline, get func(bucket) (float64, bool)) (plotter.XYs, float64) {
	var xys plotter.XYs
	top := 0.0
	for _, b := range tl.Buckets {
		if y, ok := get(b); ok {
			xys = append(xys, plotter.XY{X: b.At + tl.Width/2000, Y: y})
			top = max(top, y)
		}
	}
	return xys, top
}

// countXYs places one count per bucket at the bucket's middle.
func countXYs(ys []int, width float64) plotter.XYs {
	xys := make(plotter.XYs, len(ys))
	for i, y := range ys {
		xys[i] = plotter.XY{X: (float64(i) + 0.5) * width, Y: float64(y)}
	}
	return xys
}

func maxInt(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// vlines draws full-height vertical lines at the given x values.
type vlines struct {
	xs    []float64
	style draw.LineStyle
}

// Plot implements plot.Plotter.
func (v *vlines) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, x := range v.xs {
		xc := trX(x)
		c.StrokeLine2(v.style, xc, c.Min.Y, xc, c.Max.Y)
	}
}

// plainTicks are gonum's default ticks with labels in the shortest form,
// 25000 rather than 25000.00.
type plainTicks struct{}

// Ticks implements plot.Ticker.
func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = strconv.FormatFloat(t.Value, 'g', 6, 64)
		}
	}
	return ticks
}
