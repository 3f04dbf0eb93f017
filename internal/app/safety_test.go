package app_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/testwait"
)

var (
	emailShape = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)
	ssnShape   = regexp.MustCompile(`\b\d{3}-\d{2}-\d{4}\b`)
)

// TestSafetyStageMasksQuarantinesAndReports runs generated conversations
// with planted identifiers and crisis disclosures through the pipeline with
// the safety stage on: no email or SSN survives into the output, every
// record carries annotations.safety and the stage in its lineage, crisis
// records at or above the threshold go to quarantine.jsonl (kept, not
// dropped) with a live alert, and output, manifest and statistics agree.
func TestSafetyStageMasksQuarantinesAndReports(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{env: map[string]string{"ENABLE_SAFETY_VALIDATION": "true", "CRISIS_DETECTION_THRESHOLD": "0.7"}})
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 1500, Sources: 1, Format: "chatml", Seed: 21})
	require.NoError(t, err)
	req := localRequest(sum.Files...)
	req.Safety = json.RawMessage(`{"pii_masking":"pseudonym"}`)
	id, msgs := s.run(t, req)
	final := msgs[len(msgs)-1]
	require.Equal(t, "completed", final.Data["status"], "%v", final.Data)
	alerts := 0
	for _, m := range msgs {
		if m.EventType == "dataset_alert" && m.Data["code"] == "crisis_quarantine" {
			alerts++
		}
	}
	x := waitProjected(t, s, id, msgs)

	data := readLines(t, filepath.Join(x.OutputDir, "data.jsonl.zst"))
	quar := readLines(t, filepath.Join(x.OutputDir, "quarantine.jsonl"))
	require.NotEmpty(t, quar, "the generator plants crisis disclosures; some reach the threshold")
	require.EqualValues(t, 1500, int64(len(data))+int64(len(quar))+x.Rejected, "every record is in output, quarantine or rejected")
	wantAlerts := len(quar)
	if wantAlerts > 20 {
		wantAlerts = 21 // twenty, then one that sums up the rest
	}
	require.Equal(t, wantAlerts, alerts, "one live alert per quarantined record, up to 20, then a summary")

	var piiTotal int64
	for _, rec := range append(data, quar...) {
		b, _ := json.Marshal(rec["messages"])
		require.False(t, emailShape.Match(b), "no email address survives masking")
		require.False(t, ssnShape.Match(b), "no SSN survives masking")
		ann := rec["annotations"].(map[string]any)["safety"].(map[string]any)
		for _, n := range ann["pii"].(map[string]any) {
			piiTotal += int64(n.(float64))
		}
		lineage := rec["lineage"].([]any)
		require.Equal(t, "safety_validation", lineage[len(lineage)-1].(map[string]any)["stage"])
	}
	for _, rec := range quar {
		ann := rec["annotations"].(map[string]any)["safety"].(map[string]any)
		require.Equal(t, true, ann["quarantined"])
		require.GreaterOrEqual(t, ann["crisis"].(map[string]any)["score"].(float64), 0.7)
	}

	var manifest struct {
		Stages []struct{ Name string } `json:"stages"`
		Safety events.SafetySummary    `json:"safety"`
	}
	b, err := os.ReadFile(filepath.Join(x.OutputDir, "manifest.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &manifest))
	require.EqualValues(t, len(quar), manifest.Safety.Quarantined)
	var manifestPII int64
	for _, n := range manifest.Safety.PII {
		manifestPII += n
	}
	require.Equal(t, piiTotal, manifestPII, "the safety report counts what the records' annotations count")
	var report struct {
		Types map[string]struct{ Found, Masked int64 } `json:"safe_harbor_identifiers"`
	}
	rb, err := os.ReadFile(filepath.Join(x.OutputDir, "safety_report.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(rb, &report))
	var reported int64
	for _, c := range report.Types {
		require.Equal(t, c.Found, c.Masked, "every identifier found is masked")
		reported += c.Found
	}
	require.Equal(t, manifestPII, reported, "safety_report.json counts each Safe Harbor type")
	require.Greater(t, manifestPII, int64(0))
	var names []string
	for _, st := range manifest.Stages {
		names = append(names, st.Name)
	}
	require.Contains(t, names, "safety_validation")

	st, err := s.client.Status(t.Context(), id)
	require.NoError(t, err)
	require.Contains(t, st["stages_completed"], "safety_validation")

	// Statistics and the live feed carry the per-dataset rates.
	var stats struct {
		Safety struct {
			PIIFound       int64   `json:"pii_found"`
			Quarantined    int64   `json:"quarantined"`
			QuarantineRate float64 `json:"quarantine_rate"`
		} `json:"safety"`
	}
	require.NoError(t, s.client.Do(t.Context(), "GET", "/statistics/"+id, nil, &stats))
	require.Equal(t, manifestPII, stats.Safety.PIIFound)
	require.EqualValues(t, len(quar), stats.Safety.Quarantined)
	require.InDelta(t, float64(len(quar))/1500, stats.Safety.QuarantineRate, 1e-9)
	live := false
	for _, m := range msgs {
		if m.EventType == "dataset_progress" && m.Data["safety"] != nil {
			live = true
		}
	}
	require.True(t, live, "dataset_progress messages carry the safety figures")
}

// TestSafetyGateFailsAboveTheAllowedQuarantineRate: a request that allows
// no quarantined records fails with safety_violation when one is found.
func TestSafetyGateFailsAboveTheAllowedQuarantineRate(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{env: map[string]string{"ENABLE_SAFETY_VALIDATION": "true"}})
	p := filepath.Join(s.data, "c.jsonl")
	require.NoError(t, os.WriteFile(p, []byte(
		`{"messages":[{"role":"user","content":"Last month I tried to kill myself and woke up in the hospital."},{"role":"assistant","content":"I am really glad you are here. Are you safe right now?"}]}`+"\n"+
			`{"messages":[{"role":"user","content":"Work has been stressful."},{"role":"assistant","content":"That sounds hard."}]}`+"\n"), 0o644))
	req := localRequest(p)
	req.Safety = json.RawMessage(`{"max_quarantine_rate":0}`)
	_, msgs := s.run(t, req)
	final := msgs[len(msgs)-1]
	require.Equal(t, "failed", final.Data["status"], "%v", final.Data)
	require.Equal(t, events.CategorySafety, final.Data["error_category"])
	require.Equal(t, events.StageSafety, final.Data["stage"])
}

// TestSexualContentWithMinorsIsAlwaysBlocked: such a record is rejected
// with a reason (never output, never quarantined), and a responder turn
// telling someone to kill themselves sends the record to review.
func TestSexualContentWithMinorsIsAlwaysBlocked(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{env: map[string]string{"ENABLE_SAFETY_VALIDATION": "true"}})
	p := filepath.Join(s.data, "c.jsonl")
	require.NoError(t, os.WriteFile(p, []byte(
		`{"messages":[{"role":"user","content":"Where can I find porn with a 13 year old?"},{"role":"assistant","content":"I can't help with that."}]}`+"\n"+
			`{"messages":[{"role":"user","content":"Nobody listens to me."},{"role":"assistant","content":"You are worthless, just kill yourself."}]}`+"\n"+
			`{"messages":[{"role":"user","content":"Work has been stressful."},{"role":"assistant","content":"That sounds hard."}]}`+"\n"), 0o644))
	id, msgs := s.run(t, localRequest(p))
	require.Equal(t, "completed", msgs[len(msgs)-1].Data["status"])
	x := waitProjected(t, s, id, msgs)
	rej := readLines(t, filepath.Join(x.OutputDir, "rejected.jsonl"))
	require.Len(t, rej, 1)
	require.EqualValues(t, 1, rej[0]["position"])
	require.Equal(t, "safety_validation", rej[0]["stage"])
	require.Contains(t, rej[0]["reason"], "always blocked")
	quar := readLines(t, filepath.Join(x.OutputDir, "quarantine.jsonl"))
	require.Len(t, quar, 1)
	flags := quar[0]["annotations"].(map[string]any)["safety"].(map[string]any)["flags"]
	require.Contains(t, flags, "responder_harm")
	require.Len(t, readLines(t, filepath.Join(x.OutputDir, "data.jsonl.zst")), 1)
	var stats struct {
		Safety struct {
			Blocked     int64 `json:"blocked"`
			Quarantined int64 `json:"quarantined"`
		} `json:"safety"`
	}
	require.NoError(t, s.client.Do(t.Context(), "GET", "/statistics/"+id, nil, &stats))
	require.EqualValues(t, 1, stats.Safety.Blocked)
	require.EqualValues(t, 1, stats.Safety.Quarantined)

	// The quarantined record waits in the review queue: where and why,
	// never its text; a reviewer acknowledges it with a note, audited.
	var queue struct {
		Reviews []map[string]any `json:"reviews"`
	}
	require.NoError(t, s.client.DoV1(t.Context(), "GET", "/reviews?execution_id="+id, nil, &queue))
	require.Len(t, queue.Reviews, 1)
	rv := queue.Reviews[0]
	require.Equal(t, "open", rv["status"])
	require.EqualValues(t, 2, rv["position"])
	require.Contains(t, rv["flags"], "responder_harm")
	require.NotContains(t, fmt.Sprint(rv), "worthless", "no text in the queue")
	err := s.client.DoV1(t.Context(), "POST", fmt.Sprintf("/reviews/%s/1/acknowledge", id), map[string]string{"note": "removed from training data; responder turn is abusive"}, nil)
	require.NoError(t, err)
	testwait.For(t, 30*time.Second, "the acknowledgement never reached the read model", func() bool {
		require.NoError(t, s.client.DoV1(t.Context(), "GET", "/reviews?status=all&execution_id="+id, nil, &queue))
		return len(queue.Reviews) == 1 && queue.Reviews[0]["status"] == "acknowledged"
	})
	require.Equal(t, "dev", queue.Reviews[0]["acknowledged_by"])
	require.Equal(t, "removed from training data; responder turn is abusive", queue.Reviews[0]["note"])
	require.Contains(t, readEvents(t, s, id), events.TypeReviewAcknowledged, "the acknowledgement is in the audit trail")
	err = s.client.DoV1(t.Context(), "POST", fmt.Sprintf("/reviews/%s/1/acknowledge", id), map[string]string{"note": "again"}, nil)
	require.ErrorContains(t, err, "already acknowledged")
	err = s.client.DoV1(t.Context(), "POST", fmt.Sprintf("/reviews/%s/1/acknowledge", id), map[string]string{"note": ""}, nil)
	require.ErrorContains(t, err, "non-empty note")
}
