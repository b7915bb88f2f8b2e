// Package browsertest drives a real headless Chromium (Debian's chromium, through chromedp) for
// the web pages' end-to-end tests: pages are loaded from a test server, clicked and typed into
// like a person would, screenshotted as test artifacts, and checked for accessibility with
// axe-core (served from this package's testdata, never fetched).
//
// A test that cannot start Chromium fails: .ci/run installs it when it is missing, and
// CHROME_PATH names another binary.
//
// chromedp v0.23's API is generic: an action is Action[T], selectors are typed
// (chromedp.CSS("#q"), chromedp.ID("q")), chromedp.Do runs Action[Void] steps and
// chromedp.Run one action that returns a value. Here:
//
//	b := browsertest.New(t)
//	tab := b.Tab(t)
//	browsertest.Do(t, tab, "sign in", chromedp.Navigate(url), chromedp.SendKeys(chromedp.CSS("#key"), key),
//		chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#payments")))
//	text := browsertest.Get(t, tab, "status", chromedp.Text(chromedp.CSS("#status")))
//	browsertest.Screenshot(t, tab, "signed-in")
//	browsertest.CheckAccessibility(t, tab, "payments list")
package browsertest

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// axeSource is axe-core 4.14.1 (MPL-2.0, Deque Systems), axe.min.js as published on npm.
//
//go:embed testdata/axe.min.js
var axeSource string

// Timeout bounds one browser step (a navigation, a wait for an element).
const Timeout = 30 * time.Second

// Browser is a headless Chromium for one test, closed in t.Cleanup.
type Browser struct {
	ctx context.Context
}

// chromePath is the browser binary: CHROME_PATH, else chromium on PATH.
func chromePath(t testing.TB) string {
	if p := os.Getenv("CHROME_PATH"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("browsertest: no Chromium: install Debian's chromium (.ci/run does) or set CHROME_PATH")
	return ""
}

// New starts Chromium for t. The flags keep it off the network (this machine has none): no
// background networking, no component updates, a fresh profile.
func New(t testing.TB) *Browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromePath(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// Start the browser now, so that a missing or broken binary fails here, clearly.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("browsertest: start Chromium: %v", err)
	}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return &Browser{ctx: ctx}
}

// Tab opens a new tab, closed in t.Cleanup. Run steps in it with Run.
func (b *Browser) Tab(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browsertest: new tab: %v", err)
	}
	return ctx
}

// Do runs steps in tab in order, all within Timeout, and fails t naming what for (with a
// screenshot of the page as it was).
func Do(t testing.TB, tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		Screenshot(t, tab, "failed-"+what)
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// Get runs one action that returns a value (chromedp.Text, chromedp.Evaluate[T], …) in tab
// within Timeout, and fails t naming what for.
func Get[T any](t testing.TB, tab context.Context, what string, action chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, Timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		Screenshot(t, tab, "failed-"+what)
		t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// ArtifactsDir is where screenshots go: BROWSER_ARTIFACTS, else artifacts/screenshots at the
// module root (ignored by git; CI keeps it).
func ArtifactsDir() string {
	if d := os.Getenv("BROWSER_ARTIFACTS"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "artifacts", "screenshots")
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Screenshot saves a full-page PNG of tab as <ArtifactsDir>/<test>-<name>.png and returns its
// path. A failure to take it is logged, not fatal: it is evidence, not the test.
func Screenshot(t testing.TB, tab context.Context, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, Timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("browsertest: screenshot %s: %v", name, err)
		return ""
	}
	dir := ArtifactsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("browsertest: screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(dir, unsafeName.ReplaceAllString(t.Name()+"-"+name, "_")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Logf("browsertest: screenshot %s: %v", name, err)
		return ""
	}
	t.Logf("screenshot: %s", path)
	return path
}

// Violation is one axe-core rule a page breaks.
type Violation struct {
	ID          string `json:"id"`
	Impact      string `json:"impact"`
	Description string `json:"description"`
	Nodes       []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

// CheckAccessibility runs axe-core on the page in tab against WCAG 2.1 A and AA (labels,
// contrast, names, landmarks, …) and fails t listing every violation.
func CheckAccessibility(t testing.TB, tab context.Context, page string) {
	t.Helper()
	for _, v := range Violations(t, tab, page) {
		var where []string
		for _, n := range v.Nodes {
			where = append(where, fmt.Sprint(n.Target)+" "+n.HTML)
		}
		t.Errorf("accessibility: %s: %s (%s, %s):\n  %s", page, v.ID, v.Description, v.Impact, strings.Join(where, "\n  "))
	}
}

// Violations runs axe-core on the page in tab against WCAG 2.1 A and AA and returns what it
// found.
func Violations(t testing.TB, tab context.Context, page string) []Violation {
	t.Helper()
	script := axeSource + `;
		(async () => {
			const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
			return JSON.stringify(r.violations);
		})()`
	raw := Get(t, tab, "axe on "+page, chromedp.Evaluate[string](script, chromedp.EvalAwaitPromise))
	var vs []Violation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		t.Fatalf("axe on %s: %v: %s", page, err, raw)
	}
	return vs
}
