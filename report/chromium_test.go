package report

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/rpcbench/rpcbench/results"
)

// The HTML report opened in headless Chromium (Debian's chromium package;
// .ci/ensure-chromium.sh installs it): the page loads with no
// console error and no network request, every chart is present and drawn,
// the summary table sorts, the page fits a phone and prints. Screenshots
// and the PDF are written to $RPCBENCH_ARTIFACTS (default: a directory
// under the system temp dir, logged).

// chromium finds the browser; outside CI a missing browser skips the test,
// in CI (CI=true) it fails it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium not found: run .ci/ensure-chromium.sh (or apt-get install chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("RPCBENCH_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "rpcbench-report-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browserEvents records what a page did that it must not.
type browserEvents struct {
	mu       sync.Mutex
	pageURL  string
	problems []string
	requests []string
}

func (b *browserEvents) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.APITypeError || e.Type == runtime.APITypeWarning || e.Type == runtime.APITypeAssert {
			var args []string
			for _, a := range e.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			b.problems = append(b.problems, fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " ")))
		}
	case *runtime.EventExceptionThrown:
		b.problems = append(b.problems, "exception: "+e.ExceptionDetails.Error())
	case *cdplog.EventEntryAdded:
		if e.Entry.Level == cdplog.LevelError || e.Entry.Level == cdplog.LevelWarning {
			b.problems = append(b.problems, fmt.Sprintf("log %s (%s): %s %s", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL))
		}
	case *network.EventRequestWillBeSent:
		if e.Request.URL != b.pageURL {
			b.requests = append(b.requests, e.Request.URL)
		}
	}
}

type chartInfo struct {
	Kind   string  `json:"kind"`
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
	Lines  int     `json:"lines"`
	Texts  int     `json:"texts"`
}

// chartsJS measures every chart: its drawn size, how many coloured data
// lines it has (strokes that are neither black, grey nor none), and how
// many text labels.
const chartsJS = `Array.from(document.querySelectorAll("figure.chart-fig")).map(function (f) {
  var s = f.querySelector("svg"), r = s ? s.getBoundingClientRect() : {width: 0, height: 0}, lines = 0;
  if (s) s.querySelectorAll("path").forEach(function (p) {
    var c = getComputedStyle(p).stroke, m = c.match(/\d+/g);
    if (!m || m.length < 3) return;
    var grey = m[0] === m[1] && m[1] === m[2];
    if (!grey && p.getTotalLength() > 0) lines++;
  });
  return {kind: f.dataset.chart, width: r.width, height: r.height, lines: lines, texts: s ? s.querySelectorAll("text").length : 0};
})`

// sortJS clicks the p99 heading and returns the p99 sort keys top to bottom.
const sortJS = `(function () {
  var t = document.getElementById("summary-table"), ths = t.tHead.rows[0].cells, col = -1;
  for (var i = 0; i < ths.length; i++) if (ths[i].textContent.trim() === "p99") col = i;
  ths[col].click();
  return Array.from(t.tBodies[0].rows).map(function (r) { var n = Number(r.cells[col].getAttribute("data-v")); return isFinite(n) ? n : 1e300; });
})()`

// startChromium starts a headless browser for the test and returns its
// context.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	exe := chromium(t)
	// The timeout only guards against a hung browser; nothing is timed.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	profile, err := os.MkdirTemp("", "rpcbench-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancel()
		os.RemoveAll(profile) // best effort: the browser may still be letting go of it
	})
	if err := chromedp.Run(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return browser
}

// visit is what a page did in the browser.
type visit struct {
	problems, requests []string
	headline           string
	rows               int
	charts             []chartInfo
	sorted             []float64
	overflow           bool
	desktop, phone     []byte
	pdf                []byte
}

// open loads html as a file in a new tab of browser, looks at it on a
// desktop and a phone, prints it and sorts its table.
func open(t *testing.T, browser context.Context, html string) visit {
	t.Helper()
	file := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(file, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	pageURL := (&url.URL{Scheme: "file", Path: file}).String()
	ev := &browserEvents{pageURL: pageURL}
	tab, cancelTab := chromedp.NewContext(browser)
	defer cancelTab()
	chromedp.ListenTarget(tab, ev.listen)
	var v visit
	err := chromedp.Run(tab,
		chromedp.Navigate(pageURL),
		chromedp.WaitReady("body", chromedp.ByQuery),
		chromedp.Evaluate(`(document.getElementById("headline") || {textContent: ""}).textContent`, &v.headline),
		chromedp.Evaluate(`document.querySelectorAll("#summary-table tbody tr").length`, &v.rows),
		chromedp.Evaluate(chartsJS, &v.charts),
		chromedp.FullScreenshot(&v.desktop, 100),
		chromedp.ActionFunc(func(ctx context.Context) error {
			var err error
			v.pdf, _, err = cdppage.PrintToPDF().Do(ctx)
			return err
		}),
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth + 1`, &v.overflow),
		chromedp.FullScreenshot(&v.phone, 100),
		chromedp.EmulateReset(),
		chromedp.Evaluate(`document.getElementById("summary-table") ? `+sortJS+` : []`, &v.sorted),
		chromedp.Sleep(200*time.Millisecond), // let late events arrive
	)
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	v.problems, v.requests = ev.problems, ev.requests
	return v
}

func TestHTMLInChromium(t *testing.T) {
	browser := startChromium(t)
	artifacts := artifactDir(t)
	pages := []struct {
		name string
		runs []*results.Run
	}{
		{"closed", []*results.Run{synthRun(t, 1, threeDrivers()...)}},
		{"open", []*results.Run{openLoopRun(t)}},
		{"two-runs", []*results.Run{synthRun(t, 1, threeDrivers()...), synthRun(t, 2, threeDrivers()...)}},
	}
	if real, err := results.Read(filepath.Join("testdata", "result-tcp-grpc-nats.json")); err == nil {
		pages = append(pages, struct {
			name string
			runs []*results.Run
		}{"real", []*results.Run{real}})
	} else {
		t.Error(err)
	}
	for _, pg := range pages {
		t.Run(pg.name, func(t *testing.T) {
			html := renderHTML(t, pg.runs...)
			v := open(t, browser, html)
			for name, data := range map[string][]byte{"desktop.png": v.desktop, "phone.png": v.phone, "print.pdf": v.pdf} {
				p := filepath.Join(artifacts, "report-"+pg.name+"-"+name)
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("artifact: %s (%d bytes)", p, len(data))
			}
			for _, p := range v.problems {
				t.Errorf("page logged: %s", p)
			}
			for _, r := range v.requests {
				t.Errorf("page made a request: %s", r)
			}
			if strings.TrimSpace(v.headline) == "" {
				t.Error("no headline")
			}
			if want := strings.Count(html, `data-chart="`); len(v.charts) != want || want == 0 {
				t.Errorf("browser shows %d charts, the page has %d", len(v.charts), want)
			}
			for i, c := range v.charts {
				if c.Width < 200 || c.Height < 100 || c.Lines == 0 || c.Texts < 5 {
					t.Errorf("chart %d (%s) is empty or not drawn: %+v", i, c.Kind, c)
				}
			}
			if want := strings.Count(html, "<tr>\n<td data-v="); v.rows != want {
				t.Errorf("summary table shows %d rows, want %d", v.rows, want)
			}
			if len(v.sorted) != v.rows {
				t.Errorf("sorting returned %d rows, want %d", len(v.sorted), v.rows)
			}
			for i := 1; i < len(v.sorted); i++ {
				if v.sorted[i] < v.sorted[i-1] {
					t.Errorf("after clicking p99 the rows are not in ascending p99 order: %v", v.sorted)
					break
				}
			}
			if v.overflow {
				t.Error("on a 390 px wide phone the page scrolls sideways")
			}
			if !bytes.HasPrefix(v.pdf, []byte("%PDF")) {
				t.Error("printing did not produce a PDF")
			}
		})
	}
}

// TestChromiumCheckCanFail shows the browser check sees what it must
// reject: a request to another address, a console error, an exception and
// an empty chart.
func TestChromiumCheckCanFail(t *testing.T) {
	browser := startChromium(t)
	bad := `<!DOCTYPE html><html><head><title>bad</title></head><body>
<img src="http://127.0.0.1:9/pixel.png" alt="">
<figure class="chart-fig" data-chart="percentile"><svg width="10" height="10"></svg></figure>
<script>console.error("boom"); null.x;</script><footer></footer></body></html>`
	v := open(t, browser, bad)
	if len(v.requests) == 0 {
		t.Error("a request to another address went unnoticed")
	}
	var consoleErr, exception bool
	for _, p := range v.problems {
		consoleErr = consoleErr || strings.Contains(p, "boom")
		exception = exception || strings.HasPrefix(p, "exception")
	}
	if !consoleErr || !exception {
		t.Errorf("console error seen %v, exception seen %v; problems: %v", consoleErr, exception, v.problems)
	}
	if len(v.charts) != 1 || v.charts[0].Lines != 0 {
		t.Errorf("empty chart measured as %+v", v.charts)
	}
}
