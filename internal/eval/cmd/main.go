// Command eval runs `dsctl analyze` over the evaluation sets in
// ../shared/eval and writes docs/EVALUATION.md. The sets are read where
// they are; nothing from them is copied into the repository or the report
// except counts and scores.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/dspipe/dspipe/internal/eval"
	"github.com/dspipe/dspipe/internal/pii"
)

func main() {
	shared := flag.String("shared", "../shared/eval", "evaluation sets")
	out := flag.String("out", "docs/EVALUATION.md", "report to write")
	bin := flag.String("dsctl", "bin/dsctl", "the dsctl binary")
	flag.Parse()
	if _, err := os.Stat(*shared); err != nil {
		fmt.Fprintf(os.Stderr, "eval: %s is missing: the evaluation sets live in ../shared/eval beside the repository; nothing was measured\n", *shared)
		os.Exit(2)
	}
	if err := run(*shared, *out, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "eval:", err)
		os.Exit(1)
	}
}

// analyze runs `dsctl analyze <stage>` on a file and returns its output.
func analyze(bin, stage, path string) ([]byte, time.Duration, error) {
	in, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer in.Close()
	cmd := exec.Command(bin, "analyze", stage)
	cmd.Stdin = in
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return nil, 0, fmt.Errorf("%s analyze %s < %s: %w", bin, stage, path, err)
	}
	return stdout.Bytes(), time.Since(start), nil
}

func run(shared, out, bin string) error {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# Evaluation\n\nWritten by `make eval` on %s (%s, %d CPUs, %s). Reproduce: `make eval` (needs `../shared/eval` beside the repository).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), host, runtime.NumCPU(), runtime.Version())
	b.WriteString("Every figure comes from running `bin/dsctl analyze <stage>` over the development splits in `../shared/eval` " +
		"(real, public data nobody on this team wrote; see its README). Nothing from those files is copied here: only counts and scores.\n\n")
	if err := piiSection(&b, shared, bin); err != nil {
		return err
	}
	if err := crisisSection(&b, shared, bin); err != nil {
		return err
	}
	if err := contentSection(&b, shared, bin); err != nil {
		return err
	}
	if err := qualitySection(&b, shared, bin); err != nil {
		return err
	}
	if err := biasSection(&b, shared, bin); err != nil {
		return err
	}
	if err := fusionSection(&b); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, []byte(b.String()), 0o644)
}

func f(x float64) string { return fmt.Sprintf("%.3f", x) }

func piiSection(b *strings.Builder, shared, bin string) error {
	b.WriteString("## PII detection (`dsctl analyze pii`)\n\n")
	b.WriteString("Matching: a gold span is **found** when a predicted span of the same type overlaps it by at least one byte; a prediction is " +
		"**correct** when it overlaps a gold span of its type. *Exact* requires equal offsets. \"Safe Harbor\" pools every type but ORGANIZATION.\n\n")
	for _, set := range []struct{ file, note string }{
		{"pii/presidio-synth.dev.jsonl", "synthetic sentences with fake personal data; all types labelled"},
		{"pii/wnut17-names.dev.jsonl", "real, noisy posts; only PERSON and LOCATION labelled, so precision is not meaningful (other identifiers we find count as wrong); read recall"},
	} {
		path := filepath.Join(shared, set.file)
		gold, err := eval.ReadPIIFile(path)
		if err != nil {
			return err
		}
		raw, took, err := analyze(bin, "pii", path)
		if err != nil {
			return err
		}
		pred, err := eval.ReadPII(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("analyzer output: %w", err)
		}
		var textBytes int
		for _, g := range gold {
			textBytes += len(g.Text)
		}
		if strings.Contains(set.file, "wnut17") {
			// WNUT-17 labels a user's handle as a person: a USERNAME
			// prediction there is a PERSON found.
			for i := range pred {
				for j := range pred[i].Spans {
					if pred[i].Spans[j].Type == pii.Username {
						pred[i].Spans[j].Type = pii.Person
					}
				}
			}
		}
		sc := eval.ScorePII(gold, pred)
		fmt.Fprintf(b, "### `%s` (%d rows; %s)\n\n", set.file, len(gold), set.note)
		b.WriteString("| type | gold | predicted | recall | precision | F1 | exact recall | exact precision |\n|---|---|---|---|---|---|---|---|\n")
		for _, t := range eval.Types(sc.Overlap) {
			o, e := sc.Overlap[t], sc.Exact[t]
			fmt.Fprintf(b, "| %s | %d | %d | %s | %s | %s | %s | %s |\n", t, o.Gold, o.Pred, f(o.Recall()), f(o.Precision()), f(o.F1()), f(e.Recall()), f(e.Precision()))
		}
		structured := []string{pii.Email, pii.Phone, pii.SSN, pii.CreditCard, pii.Account, pii.IPAddress, pii.URL}
		rows := []struct {
			name  string
			types []string
		}{{"**Safe Harbor (all but ORGANIZATION)**", pii.SafeHarbor}, {"**structured (EMAIL, PHONE, SSN, CREDIT_CARD, ACCOUNT, IP_ADDRESS, URL)**", structured}}
		for _, r := range rows {
			o, e := eval.Pool(sc.Overlap, r.types), eval.Pool(sc.Exact, r.types)
			fmt.Fprintf(b, "| %s | %d | %d | %s | %s | %s | %s | %s |\n", r.name, o.Gold, o.Pred, f(o.Recall()), f(o.Precision()), f(o.F1()), f(e.Recall()), f(e.Precision()))
			fmt.Fprintf(os.Stderr, "%s %s: recall %s precision %s\n", set.file, r.name, f(o.Recall()), f(o.Precision()))
		}
		a := sc.Overlap["ANY"]
		fmt.Fprintf(b, "| any identifier, type ignored | %d | %d | %s | %s | %s | | |\n", a.Gold, a.Pred, f(a.Recall()), f(a.Precision()), f(a.F1()))
		rm, rmYears := eval.ScoreRemoval(gold, pred, pii.SafeHarbor, nil), eval.ScoreRemoval(gold, pred, pii.SafeHarbor, eval.BareYear)
		fmt.Fprintf(b, "| **Safe Harbor removal** (any Safe Harbor type counts) | %d | %d | %s | %s | %s | | |\n", rm.Gold, rm.Pred, f(rm.Recall()), f(rm.Precision()), f(rm.F1()))
		fmt.Fprintf(b, "| Safe Harbor removal, bare years not counted as identifiers | %d | %d | %s | %s | %s | | |\n", rmYears.Gold, rmYears.Pred, f(rmYears.Recall()), f(rmYears.Precision()), f(rmYears.F1()))
		if strings.Contains(set.file, "presidio") {
			h, st, p := eval.Pool(sc.Overlap, pii.SafeHarbor), eval.Pool(sc.Overlap, structured), sc.Overlap[pii.Person]
			b.WriteString("\nAgainst the targets of the safety issue:\n\n| target | measured | |\n|---|---|---|\n")
			for _, r := range []struct {
				name   string
				got    float64
				target float64
			}{{"Safe Harbor recall ≥ 0.95, removal (any Safe Harbor type)", rm.Recall(), 0.95}, {"Safe Harbor precision ≥ 0.90, removal", rm.Precision(), 0.90},
				{"Safe Harbor recall ≥ 0.95, removal, bare years (which Safe Harbor lets stay) not counted", rmYears.Recall(), 0.95},
				{"Safe Harbor recall ≥ 0.90, labelling (same type)", h.Recall(), 0.90}, {"Safe Harbor precision ≥ 0.85, labelling", h.Precision(), 0.85},
				{"structured recall ≥ 0.97", st.Recall(), 0.97}, {"PERSON recall ≥ 0.85", p.Recall(), 0.85}} {
				verdict := "met"
				if r.got < r.target {
					verdict = "**not met**"
				}
				fmt.Fprintf(b, "| %s | %s | %s |\n", r.name, f(r.got), verdict)
			}
			b.WriteString("\nTwo readings of \"Safe Harbor types together\". *Removal* asks what Safe Harbor asks: is each identifier masked? " +
				"A gold span counts as found when any Safe Harbor prediction overlaps it. *Labelling* also asks for the gold's type. " +
				"The gap between them is mostly addresses, whose parts the gold types inconsistently (below). Both are reported; " +
				"the per-type table above is always by type.\n")
			b.WriteString("\nWhere the misses come from (read from the development rows, not tuned to ids):\n\n" +
				"- DATE: a year on its own is not masked. Under Safe Harbor the year may stay, and the gold labels mark bare years as DATE (the second removal row leaves them out).\n" +
				"- ADDRESS, LOCATION and ZIP: the gold types the parts of a multi-line address inconsistently: the same \"Country 12345\" last line is ADDRESS in some rows " +
				"and LOCATION plus ZIP in others, and a city line is LOCATION in some and part of one ADDRESS span in others. We mask the street line as ADDRESS and each following part " +
				"with its own type (unit ADDRESS, city and country LOCATION, postal code ZIP), so every part is masked but some count as wrong under labelling.\n" +
				"- PERSON precision: organisation names made of surnames and capitalised titles of works are taken for people.\n" +
				"- Names are found by context rules over capitalised words, a common-word list and a list of capitalised dictionary entries (SCOWL, see `internal/pii/LEXICON-NOTICE`), " +
				"and by a trained tagger (`internal/pii/tagger.go`, below); no name list from a fake-data generator is used.\n")
		}
		if strings.Contains(set.file, "wnut17") {
			p, l := sc.Overlap[pii.Person], sc.Overlap[pii.Location]
			b.WriteString("\nAgainst the targets of the detectors issue (handles count as PERSON):\n\n| target | measured | |\n|---|---|---|\n")
			for _, r := range []struct {
				name   string
				got    float64
				target float64
			}{{"PERSON recall ≥ 0.80", p.Recall(), 0.80}, {"LOCATION recall ≥ 0.80", l.Recall(), 0.80}, {"PERSON precision ≥ 0.70", p.Precision(), 0.70}} {
				fmt.Fprintf(b, "| %s | %s | %s |\n", r.name, f(r.got), verdict(r.got >= r.target))
			}
			b.WriteString("\nThe tagger: an averaged perceptron over hashed word features (case, shape, affixes, neighbours, Census name and GeoNames city " +
				"gazetteers, and what the rules said of the word), decoded greedily, trained by `make train` on the WNUT-17 *training* split and the " +
				"Broad Twitter Corpus (both CC BY 4.0; `internal/pii/traindata/NOTICE`), with lower-cased copies and name-substituted copies of the " +
				"sentences that name someone. It never saw this file. It adds the names and places no rule found (`go run ./internal/train -cv` shows, " +
				"on held-out WNUT-17 training texts, how the rules, the tagger and the two together compare; the union was chosen there). " +
				"On this set it took PERSON recall from 0.483 (rules alone) to the figure above and LOCATION from 0.311. What remains: single " +
				"lower-case nicknames and names of fictional and online characters, and precision, which the union lowers.\n")
		}
		fmt.Fprintf(b, "\nSpeed here: %.1f MB/s including process start (%d bytes of text in %s).\n\n", float64(textBytes)/1e6/took.Seconds(), textBytes, took.Round(time.Millisecond))
		for _, t := range eval.Types(sc.Overlap) {
			o := sc.Overlap[t]
			fmt.Fprintf(os.Stderr, "  %-13s gold %4d pred %4d R %s P %s\n", t, o.Gold, o.Pred, f(o.Recall()), f(o.Precision()))
		}
	}
	return nil
}

func crisisSection(b *strings.Builder, shared, bin string) error {
	path := filepath.Join(shared, "crisis/cssrs-reddit.dev.jsonl")
	gold, err := eval.ReadCrisisFile(path)
	if err != nil {
		return err
	}
	raw, took, err := analyze(bin, "crisis", path)
	if err != nil {
		return err
	}
	pred, err := eval.ReadCrisis(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("analyzer output: %w", err)
	}
	c := eval.ScoreCrisis(gold, pred)
	fmt.Fprintf(b, "## Crisis detection (`dsctl analyze crisis`)\n\n### `crisis/cssrs-reddit.dev.jsonl` (%d users; all posts of one user form one conversation)\n\n", len(gold))
	b.WriteString("Rows: the psychiatrists' C-SSRS label of the user. Columns: the level we assign. A user is *flagged at a level* when we assign that level or a higher one.\n\n")
	b.WriteString("| gold \\ predicted | none | indicator | ideation | behavior | attempt | users | flagged ≥ ideation | flagged ≥ behavior |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, g := range eval.CrisisLabels {
		row := c.Matrix[g]
		n := 0
		for _, v := range row {
			n += v
		}
		fmt.Fprintf(b, "| %s | %d | %d | %d | %d | %d | %d | %s | %s |\n", g, row["none"], row["indicator"], row["ideation"], row["behavior"], row["attempt"], n,
			f(c.FlaggedAtLeast(g, 2)), f(c.FlaggedAtLeast(g, 3)))
	}
	ba := c.Pooled([]string{"Behavior", "Attempt"}, 2)
	sup := c.FlaggedAtLeast("Supportive", 3)
	b.WriteString("\nAgainst the targets of the safety issue:\n\n| target | measured | |\n|---|---|---|\n")
	fmt.Fprintf(b, "| Behavior and Attempt users flagged at ideation or above ≥ 0.95 | %s | %s |\n", f(ba), verdict(ba >= 0.95))
	fmt.Fprintf(b, "| Supportive users flagged as behavior or attempt ≤ 0.15 (false-positive rate) | %s | %s |\n", f(sup), verdict(sup <= 0.15))
	fmt.Fprintf(b, "| Supportive users flagged at ideation or above (reported; ideation is flagged generously on purpose) | %s | |\n", f(c.FlaggedAtLeast("Supportive", 2)))
	m := c.MacroF1()
	fmt.Fprintf(b, "| 5-level macro-F1 ≥ 0.50 (detectors issue; Supportive read as none) | %s | %s |\n", f(m), verdict(m >= 0.50))
	fmt.Fprintf(b, "| Supportive users flagged as behavior or attempt ≤ 0.10 (detectors issue) | %s | %s |\n", f(sup), verdict(sup <= 0.10))
	fmt.Fprintf(b, "\nSpeed here: %d users in %s including process start.\n\n", len(gold), took.Round(time.Millisecond))
	b.WriteString("Method: phrase lists per C-SSRS level, weighed per sentence by who the sentence is about (the nearest person word; phrases such as " +
		"\"myself\" are the writer's own), negation right before the phrase, hypotheticals and past-time words. Attempt and behaviour need a strong or " +
		"repeated signal about the writer; means and intent words without the writer as subject count as ideation only. Ideation is flagged on any " +
		"mention about the writer, because a missed ideation costs more than a second look by a reviewer; the subject named as a topic with nobody " +
		"as its subject (\"suicide\", \"self-harm\") stays under it. A past attempt stays an attempt (the C-SSRS counts lifetime attempts), and " +
		"an attempt named a few words after \"tried\" counts. Distress phrases (\"feeling down\", \"no one to talk to\") make the indicator " +
		"level only about the writer; everyday low mood (lonely, tired, anxious) does not. The phrasings added from this split's misses are " +
		"classes of wording (passive death wishes, numbered and half-hearted attempts, plans), not its sentences.\n\n")
	fmt.Fprintf(os.Stderr, "crisis: B+A flagged >= ideation %s, supportive >= behavior %s\n", f(ba), f(sup))
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func contentSection(b *strings.Builder, shared, bin string) error {
	path := filepath.Join(shared, "content/openai-moderation.dev.jsonl")
	gold, err := eval.ReadContentFile(path)
	if err != nil {
		return err
	}
	raw, took, err := analyze(bin, "content", path)
	if err != nil {
		return err
	}
	pred, err := eval.ReadContent(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("analyzer output: %w", err)
	}
	sc := eval.ScoreContent(gold, pred, 0.5)
	fmt.Fprintf(b, "## Content safety (`dsctl analyze content`)\n\n### `content/openai-moderation.dev.jsonl` (%d texts)\n\n", len(gold))
	b.WriteString("Each category is scored over the rows where it is labelled (a missing label is unknown, not no). Precision and recall at the flag threshold 0.5; AUC from the scores.\n\n")
	b.WriteString("| category | labelled | positives | precision | recall | AUC | AUPRC |\n|---|---|---|---|---|---|---|\n")
	for _, l := range eval.ContentLabels {
		c := sc[l.Category]
		fmt.Fprintf(b, "| %s | %d | %d | %s | %s | %s | %s |\n", l.Category, c.Positives+c.Negatives, c.Positives, f(c.Precision()), f(c.Recall()), f(c.AUC), f(c.AUPRC))
	}
	anyc := sc[eval.AnyCategory]
	fmt.Fprintf(b, "| **any category** (highest score; positive if any label is yes) | %d | %d | %s | %s | %s | %s |\n",
		anyc.Positives+anyc.Negatives, anyc.Positives, f(anyc.Precision()), f(anyc.Recall()), f(anyc.AUC), f(anyc.AUPRC))
	sh := sc["self_harm"].Recall()
	b.WriteString("\nAgainst the targets of the safety issues:\n\n| target | measured | |\n|---|---|---|\n")
	fmt.Fprintf(b, "| self-harm recall ≥ 0.90 | %s | %s |\n", f(sh), verdict(sh >= 0.90))
	for _, c := range []string{"hate", "harassment", "violence"} {
		r := sc[c].Recall()
		fmt.Fprintf(b, "| %s recall ≥ 0.70 | %s | %s |\n", c, f(r), verdict(r >= 0.70))
	}
	fmt.Fprintf(b, "| any-category AUPRC ≥ 0.85 | %s | %s |\n", f(anyc.AUPRC), verdict(anyc.AUPRC >= 0.85))
	fmt.Fprintf(b, "\nSpeed here: %d texts in %s including process start.\n\n", len(gold), took.Round(time.Millisecond))
	b.WriteString("Method: our own term lists per category (slurs stored rot13-encoded in the source), whole-word matching with each term counted at most " +
		"three times, squashed to 0..1; sexual content with a minor in the same text is the always-blocked category; self-harm combines the crisis grader " +
		"(disclosure), method and dose terms (instructions) and harm verbs aimed at \"myself\". Hate and harassment also take the score of a trained " +
		"model (`internal/content/toxicity.go`: logistic regression over hashed words, word pairs and character 4-grams, trained by `make train` on the " +
		"Davidson et al. tweets and the Surge AI comments, MIT, nothing from this set), per sentence, at a prior of 2% hateful and 5% toxic sentences. " +
		"On held-out tenths of its own training data it ranks well (AUC 0.98 toxic, 0.87 hate); here the text is different (longer, hate without slurs), " +
		"so it ranks better than the lists (AUC) but a fixed threshold alone catches little; a toxic sentence counts fully as harassment only when it " +
		"speaks to its reader. Hostility rules (`internal/content/hostility.go`) find hate, harassment and violence said without a listed term: one " +
		"sentence holding a target (a group named by a protected attribute, the reader, a person a harm is wished on) and what is said of or wished " +
		"on it (a hostile generalisation, an insult, a verb of harm with a call or wish), unless a negation or a feeling word comes just before. A " +
		"word that names a violent act (\"murder\", \"assault\") weighs half, so a news report or a survivor's account is ranked, not flagged. " +
		"The rules were written from the kinds of miss this set showed (hate without slurs, calls for harm to groups), as word classes, not its " +
		"sentences; a therapist's turn keeps them under the flag threshold.\n\n")
	fmt.Fprintf(os.Stderr, "content: self-harm recall %s\n", f(sh))
	return nil
}

func histogram(rows []eval.QualityRow) string {
	var bins [10]int
	for _, r := range rows {
		bins[min(int(r.Score*10), 9)]++
	}
	var parts []string
	for i, n := range bins {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%.1f–%.1f: %d", float64(i)/10, float64(i+1)/10, n))
		}
	}
	return strings.Join(parts, "; ")
}

func qualitySection(b *strings.Builder, shared, bin string) error {
	b.WriteString("## Quality assessment (`dsctl analyze quality`)\n\n")
	b.WriteString("Rules and thresholds (Gopher, C4, FineWeb, adapted to dialogue) are listed in `internal/quality/quality.go`; a record is rejected " +
		"below `processing.quality.min_score` (default 0.5). Language identification is our own (`internal/lang`): the libraries measured " +
		"(whatlanggo, lingua-go) ran at 0.4 to 6 MB/s here, see `docs/BENCHMARKS.md`.\n\n")
	tmp, err := os.MkdirTemp("", "dspipe-eval")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	run := func(name string, lines []eval.AnalyzeLine) ([]eval.QualityRow, error) {
		in := filepath.Join(tmp, name+".jsonl")
		if err := eval.WriteLines(in, lines); err != nil {
			return nil, err
		}
		raw, _, err := analyze(bin, "quality", in)
		if err != nil {
			return nil, err
		}
		outPath := filepath.Join(tmp, name+".out.jsonl")
		if err := os.WriteFile(outPath, raw, 0o600); err != nil {
			return nil, err
		}
		return eval.ReadQuality(outPath)
	}
	const n = 4000
	gen := eval.GeneratedConversations(n, 7)
	rows, err := run("generated", gen)
	if err != nil {
		return err
	}
	aucGen := eval.QualityAUC(gen, rows)
	kinds := map[string][2]int{}
	goodRejected := 0
	for i, l := range gen {
		k := kinds[l.Planted]
		k[0]++
		if len(rows[i].Reasons) > 0 {
			k[1]++
		}
		kinds[l.Planted] = k
		if l.Planted == "" && len(rows[i].Reasons) > 0 {
			goodRejected++
		}
	}
	fmt.Fprintf(b, "### Generated conversations (`dsctl gen`, seed 7, %d conversations; text written by us)\n\n", n)
	b.WriteString("| planted defect | conversations | rejected at 0.5 |\n|---|---|---|\n")
	for _, k := range []string{"repetition", "empty_turns", "copied_turns", "gibberish", ""} {
		name := k
		if k == "" {
			name = "none (good)"
		}
		fmt.Fprintf(b, "| %s | %d | %d |\n", name, kinds[k][0], kinds[k][1])
	}
	fmt.Fprintf(b, "\nAUC (planted scored below good): **%.3f**. Scores: %s.\n\n", aucGen, histogram(rows))
	type real struct{ file, note string }
	rejectRates := map[string]float64{}
	for _, r := range []real{{"esconv-test.json", "ESConv test split, real emotional-support dialogues"}, {"counsel-chat.csv", "real therapist answers to real questions"}} {
		lines, err := eval.StandardizedFile(filepath.Join(filepath.Dir(shared), "data", r.file))
		if err != nil {
			return err
		}
		rows, err := run(r.file, lines)
		if err != nil {
			return err
		}
		rejected := 0
		reasons := map[string]int{}
		for _, q := range rows {
			if len(q.Reasons) > 0 {
				rejected++
			}
			for _, x := range q.Reasons {
				reasons[x]++
			}
		}
		rate := float64(rejected) / float64(max(1, len(rows)))
		rejectRates[r.file] = rate
		fmt.Fprintf(b, "### `../shared/data/%s` (%d conversations; %s)\n\n", r.file, len(rows), r.note)
		fmt.Fprintf(b, "Rejected at the default threshold: %d (%.1f%%); reasons: %v. Scores: %s.\n\n", rejected, 100*rate, reasons, histogram(rows))
	}
	b.WriteString("Against the targets of the quality and bias issue:\n\n| target | measured | |\n|---|---|---|\n")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	fmt.Fprintf(b, "| AUC planted vs good ≥ 0.95 | %.3f | %s |\n", aucGen, verdict(aucGen >= 0.95))
	for _, f := range []string{"esconv-test.json", "counsel-chat.csv"} {
		fmt.Fprintf(b, "| %s rejected < 5%% | %.1f%% | %s |\n", f, 100*rejectRates[f], verdict(rejectRates[f] < 0.05))
	}
	fmt.Fprintf(os.Stderr, "quality: AUC %.3f, good rejected %d, esconv %.3f, counsel-chat %.3f\n", aucGen, goodRejected, rejectRates["esconv-test.json"], rejectRates["counsel-chat.csv"])
	b.WriteString("\nThe generated conversations are the ones the rules were first written against, so their AUC is a floor check, not a measure of " +
		"quality on real data; the real sets show what the rules reject in practice (each rejection above was read: a repeated message, " +
		"a supporter pasting the same paragraph twice).\n\n")
	return nil
}

func biasSection(b *strings.Builder, shared, bin string) error {
	path := filepath.Join(shared, "bias/bbq-contexts.dev.jsonl")
	gold, err := eval.ReadBiasFile(path)
	if err != nil {
		return err
	}
	raw, took, err := analyze(bin, "bias", path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp("", "dspipe-bias-*.jsonl")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		return err
	}
	tmp.Close()
	pred, err := eval.ReadBiasPredictions(tmp.Name())
	if err != nil {
		return err
	}
	rows, found := eval.AxisFound(gold, pred)
	b.WriteString("## Bias detection (`dsctl analyze bias`)\n\n")
	fmt.Fprintf(b, "### `bias/bbq-contexts.dev.jsonl` (%d contexts from the BBQ benchmark)\n\n", len(gold))
	b.WriteString("A row counts as found when at least one mention of the category's axis is detected.\n\n")
	b.WriteString("| category | axis | rows | axis found | share | target ≥ 0.90 |\n|---|---|---|---|---|---|\n")
	var cats []string
	for c := range rows {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	for _, c := range cats {
		share := float64(found[c]) / float64(rows[c])
		v := "met"
		if share < 0.90 {
			v = "**not met**"
		}
		fmt.Fprintf(b, "| %s | %s | %d | %d | %.3f | %s |\n", c, eval.BBQAxis[c], rows[c], found[c], share, v)
		fmt.Fprintf(os.Stderr, "bias: %s %.3f\n", c, share)
	}
	fmt.Fprintf(b, "\nSpeed here: %d contexts in %s including process start.\n\n", len(gold), took.Round(time.Millisecond))
	b.WriteString("Method: our own term lists per axis and group (`internal/bias/terms.go`), whole-word matching in one pass, " +
		"context rules for words that name people only before a person noun (\"a Black man\" but not \"black coffee\", \"a straight couple\" " +
		"but not \"straight down the road\"), ages from \"N-year-old\". **Caveat**: the lists were extended after reading this development " +
		"split's misses (for example eye conditions, mobility aids and pregnancy phrases for appearance and disability), so these shares " +
		"flatter the lists; a held-out split would measure them fairly. Gender, race and socioeconomic status are not in this split.\n\n")
	b.WriteString("The dataset score: for each of gender, age, race_ethnicity, religion and sexual_orientation with at least 20 mentions, " +
		"the total-variation distance between the groups' shares and a reference (the request's, or uniform over the axis's core groups " +
		"(gender: woman, man; age: young, old) and every group observed); the score is the largest distance, and the alert names that axis " +
		"and its over-represented groups. Nine mentions of women to one of men score 0.4; only women, 0.5.\n")
	return nil
}

func fusionSection(b *strings.Builder) error {
	b.WriteString("## Fusion: exact and near duplicates\n\n")
	tmp, err := os.MkdirTemp("", "dspipe-fusion")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	const n = 6000
	b.WriteString("Generated conversations (`dsctl gen`, three sources in three formats, 5% exact and 5% near duplicates planted across sources; " +
		"a near duplicate has its last turn edited), read back through standardization and resolved by `internal/fusion` " +
		"(MinHash, 64 permutations, 16 bands × 4 rows; see its package comment). A planted pair is found when both records end in one " +
		"cluster. A removal is correct when the removed record's exact Jaccard similarity (word 3-gram shingles) with the record kept for " +
		"it reaches the threshold: the generator's small phrase pools also make chance duplicates, and removing those is right.\n\n")
	b.WriteString("| threshold | records | planted exact | exact recall | planted near | near recall | removed | precision | clusters |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, th := range []float64{0.7, 0.8, 0.9} {
		s, err := eval.ScoreFusion(filepath.Join(tmp, fmt.Sprint(th)), n, 9, th)
		if err != nil {
			return err
		}
		mark := ""
		if th == 0.8 {
			mark = " (default)"
		}
		fmt.Fprintf(b, "| %.1f%s | %d | %d | %.3f | %d | %.3f | %d | %.3f | %d |\n", th, mark, s.Records, s.PlantedExact,
			float64(s.ExactFound)/float64(s.PlantedExact), s.PlantedNear, float64(s.NearFound)/float64(s.PlantedNear), s.Removed,
			float64(s.RemovedJustified)/float64(max(1, s.Removed)), s.Clusters)
		fmt.Fprintf(os.Stderr, "fusion %.1f: %+v\n", th, s)
	}
	b.WriteString("\nTargets of the fusion issue at the documented threshold (0.8): exact recall 1.0, near recall ≥ 0.9, precision ≥ 0.95. " +
		"The planted edits are light (one turn changed), so this measures the mechanism, not recall on real re-exports.\n")
	return nil
}
