package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/testwait"
)

// chromiumPath finds headless Chromium (Debian's chromium package, which
// .ci/run installs). Outside CI a machine without it skips the test; in
// CI its absence fails it.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("Chromium is not installed; .ci/run installs Debian's chromium package")
	}
	t.Skip("Chromium not installed (apt-get install chromium); the dashboard test needs a real browser")
	return ""
}

// screenshots is where the dashboard test saves its pictures: bin/dashboard
// in the repository (DSPIPE_SCREENSHOTS overrides).
func screenshots(t *testing.T) string {
	dir := os.Getenv("DSPIPE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin", "dashboard")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	return abs
}

// TestDashboardInARealBrowser drives the dashboard in headless Chromium as
// a user would: sign in with a token, submit a generated dataset through
// the form, watch its progress rise to 100 without going back, check the
// figures shown equal GET /statistics, acknowledge a review, open the
// audit view, and save a screenshot of each view. Any console error or
// uncaught exception fails it.
func TestDashboardInARealBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	s := startStack(t, stackOpts{env: map[string]string{"ENABLE_SAFETY_VALIDATION": "true", "ENABLE_QUALITY_ASSESSMENT": "true",
		"ENABLE_BIAS_DETECTION": "true"}})
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 3000, Sources: 1, Format: "chatml", Seed: 17})
	require.NoError(t, err)
	shots := screenshots(t)
	base := s.client.Base

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.WindowSize(1366, 900),
		chromedp.Flag("no-sandbox", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancelT := context.WithTimeout(ctx, 4*time.Minute)
	defer cancelT()

	var mu sync.Mutex
	var consoleErrors []string
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			consoleErrors = append(consoleErrors, "exception: "+e.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value))
				}
				consoleErrors = append(consoleErrors, "console.error: "+strings.Join(parts, " "))
			}
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError {
				consoleErrors = append(consoleErrors, "log: "+e.Entry.Text+" "+e.Entry.URL)
			}
		}
	}))
	_, err = chromedp.Call(ctx, runtime.Enable, cdp.Empty{})
	require.NoError(t, err)
	_, err = chromedp.Call(ctx, log.Enable, cdp.Empty{})
	require.NoError(t, err)
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644))
	}
	text := func(id string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
		require.NoError(t, err)
		return v
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		require.NoError(t, err)
		return v
	}
	// goTo changes the page's route (a hash change: no new page load, which
	// Navigate would wait for).
	goTo := func(hash string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Evaluate[string](`location.hash = `+strconv.Quote(hash))(ctx, tg)
			return chromedp.Void{}, err
		}
	}
	poll := func(expr string) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))), "waiting for %s", expr)
	}

	// Sign in.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("token"))))
	shot("1-sign-in")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token"), "dev-admin-token"),
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("nav"))))

	// Submit a generated dataset through the form.
	req, err := json.Marshal(map[string]any{
		"sources": []map[string]any{{"name": "generated", "type": "local", "config": map[string]string{"path": sum.Files[0]}, "priority": 1}},
		"output":  map[string]any{"formats": []string{"jsonl"}, "compression": "zstd"},
	})
	require.NoError(t, err)
	step := func(name string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, a); err != nil {
			shot("failed")
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			mu.Lock()
			t.Fatalf("%s: %v\npage text: %s\nbrowser errors: %v", name, err, body, consoleErrors)
		}
	}
	step("go to the form", goTo("#/new"))
	step("see the form", chromedp.WaitVisible(chromedp.ID("request")))
	// Fill it, and see that the form holds the request before submitting
	// (seen once in CI: the example request was submitted instead).
	testwait.For(t, 20*time.Second, "the form never held the request", func() bool {
		step("fill it", chromedp.SetValue(chromedp.ID("request"), string(req)))
		return eval(`document.getElementById("request").value`) == string(req)
	})
	shot("2-new-execution")
	step("submit", chromedp.Click(chromedp.CSS(`#submit-form button[type="submit"]`)))
	step("see the execution", chromedp.WaitVisible(chromedp.ID("progress")))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	id := loc[strings.Index(loc, "#/x/")+4:]
	require.True(t, strings.HasPrefix(id, "ds_"), "the form leads to the execution's page: %s", loc)

	// Hold the projector back from here to the end (a transaction holds
	// the executions table; reads go on): the feed, which comes from the
	// event log, shows the end while the read models still hold an earlier
	// moment, and the page must not stop on those figures (seen in CI).
	conn := sqlConn(t, s)
	hold, err := conn.Begin(context.Background())
	require.NoError(t, err)
	_, err = hold.Exec(context.Background(), "LOCK TABLE executions IN EXCLUSIVE MODE")
	require.NoError(t, err)
	held := true
	release := func() {
		if held {
			held = false
			require.NoError(t, hold.Rollback(context.Background()))
		}
	}
	defer release()
	var endShown time.Time

	// Watch the progress the page shows until the execution ends.
	var seen []float64
	finished := ""
	testwait.For(t, 3*time.Minute, "the page never showed the end of the execution", func() bool {
		v, err := strconv.ParseFloat(strings.ReplaceAll(text("progress-value"), ",", ""), 64)
		if err == nil && (len(seen) == 0 || v != seen[len(seen)-1]) {
			seen = append(seen, v)
		}
		if endShown.IsZero() && text("exec-status") == "completed" {
			endShown = time.Now()
		}
		if !endShown.IsZero() && time.Since(endShown) > time.Second {
			release()
		}
		finished = eval(`document.getElementById("view").dataset.finished || ""`)
		return finished != ""
	})
	release()
	require.Equal(t, "completed", finished)
	final, err := strconv.ParseFloat(text("progress-value"), 64)
	require.NoError(t, err)
	seen = append(seen, final)
	for i := 1; i < len(seen); i++ {
		require.GreaterOrEqual(t, seen[i], seen[i-1], "progress shown went back: %v", seen)
	}
	require.Equal(t, 100.0, final, "progress shown at the end: %v", seen)
	t.Logf("progress shown: %v", seen)

	// The figures shown equal the API's statistics, once the read models
	// have caught up.
	s.waitStatus(t, id, "completed")
	stats, err := s.client.Statistics(context.Background(), id)
	require.NoError(t, err)
	safety := stats["safety"].(map[string]any)
	wantQuarantined := fmt.Sprint(int(safety["quarantined"].(float64)))
	recs := stats["records"].(map[string]any)
	wantRecords := fmt.Sprintf("%s / %s", thousands(recs["processed"]), thousands(recs["total"]))
	poll(`document.getElementById("safety-quarantined") && document.getElementById("safety-quarantined").textContent === ` + strconv.Quote(wantQuarantined))
	poll(`document.getElementById("records").textContent === ` + strconv.Quote(wantRecords))
	files := stats["output_files"].([]any)
	require.NotEmpty(t, files)
	poll(`document.getElementById("files").textContent.includes(` + strconv.Quote(files[0].(map[string]any)["sha256"].(string)) + `)`)
	require.NotEqual(t, "0", wantQuarantined, "the generated data plants crisis disclosures, so there is a review to acknowledge")
	shot("3-execution")

	// The executions list shows it.
	require.NoError(t, chromedp.Do(ctx,
		goTo("#/"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="#/x/`+id+`"]`))))
	shot("4-executions")

	// Acknowledge a review with a note.
	require.NoError(t, chromedp.Do(ctx,
		goTo("#/reviews"),
		chromedp.WaitVisible(chromedp.CSS("button.ack"))))
	shot("5-reviews")
	before := eval(`String(document.querySelectorAll("button.ack").length)`)
	n, err := strconv.Atoi(before)
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("input.ack-note"), "Reviewed: kept out of the training data."),
		chromedp.Click(chromedp.CSS("button.ack"))))
	poll(`document.querySelectorAll("button.ack").length === ` + strconv.Itoa(n-1))
	// The acknowledgement reaches the read model through the event log.
	testwait.For(t, 30*time.Second, "the acknowledgement never reached the read model", func() bool {
		acked, err := s.store.Reviews(context.Background(), "acknowledged", id, 10)
		require.NoError(t, err)
		if len(acked) == 1 {
			require.Equal(t, "Reviewed: kept out of the training data.", acked[0].Note)
		}
		return len(acked) == 1
	})

	// The audit view verifies the trail.
	require.NoError(t, chromedp.Do(ctx,
		goTo("#/audit"),
		chromedp.WaitVisible(chromedp.ID("audit-id")),
		chromedp.SendKeys(chromedp.ID("audit-id"), id),
		chromedp.Click(chromedp.CSS(`#view form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("trail-verified"))))
	require.Equal(t, "verified", text("trail-verified"))
	require.NotContains(t, eval(`document.getElementById("view").innerText`), "null", "no missing value shows as null")
	shot("6-audit")

	// The API reference is rendered from the served description.
	step("open the API reference", goTo("#/api"))
	step("see an operation", chromedp.WaitVisible(chromedp.CSS("#view section.card h3")))
	ref := eval(`document.getElementById("view").innerText`)
	require.Contains(t, ref, "POST /api/v1/datasets/process")
	require.Contains(t, ref, "id\tpath\tyes", "a parameter given by reference is shown by name")
	shot("7-api-reference")

	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, consoleErrors, "the browser reported errors")
	t.Logf("screenshots in %s", shots)
}

// thousands formats a JSON number as the page does (en-US grouping).
func thousands(v any) string {
	n := int64(v.(float64))
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
