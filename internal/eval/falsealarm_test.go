package eval

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/content"
	"github.com/dspipe/dspipe/internal/crisis"
	"github.com/dspipe/dspipe/internal/stage"
)

// TestRealCounsellingFalseAlarms runs the crisis grader and the content
// classifier over the responders' turns of the real counselling data in
// ../shared/data (counsel-chat's therapists, ESConv's supporters): nobody
// there is in crisis or writing harmful content, so every quarantine-level
// crisis grade and every content flag is a false alarm. Crisis stays under
// 1%. Content flags were 10.5% of counsel-chat's answers before discussable
// words were told apart from explicit ones and supporters from disclosers,
// 3.3% before a responder's turn was read as counselling and discussion
// was capped under the flag threshold, and are under 1% now (issue 14's
// target), which this holds; the rates per category are reported.
func TestRealCounsellingFalseAlarms(t *testing.T) {
	data := sharedEval(t, "../data")
	for _, f := range []string{"counsel-chat.csv", "esconv-test.json"} {
		convs, err := StandardizedFile(filepath.Join(data, f))
		require.NoError(t, err)
		var responders, crisisAlarms, turns, flagged int
		perCategory := map[string]int{}
		for _, c := range convs {
			var texts []string
			for _, m := range c.Messages {
				if m.Role != stage.RoleAssistant {
					continue
				}
				texts = append(texts, m.Content)
				turns++
				r := content.AssessResponder(m.Content) // as the safety stage reads an assistant turn
				if r.Flagged {
					flagged++
				}
				for cat, v := range r.Categories {
					if v >= content.FlagThreshold {
						perCategory[cat]++
					}
				}
			}
			if len(texts) == 0 {
				continue
			}
			responders++
			if r := crisis.Assess(texts); crisis.Rank(r.Level) >= crisis.Rank(crisis.Ideation) && r.Score >= 0.8 {
				crisisAlarms++
			}
		}
		crisisRate := float64(crisisAlarms) / float64(responders)
		contentRate := float64(flagged) / float64(turns)
		t.Logf("%s: crisis quarantine on %d of %d responders (%.2f%%); content flags on %d of %d responder turns (%.2f%%), by category %v",
			f, crisisAlarms, responders, 100*crisisRate, flagged, turns, 100*contentRate, perCategory)
		require.Less(t, crisisRate, 0.01, f)
		require.Less(t, contentRate, 0.01, f)
	}
}
