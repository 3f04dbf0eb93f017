// Command train rebuilds the detectors' trained models from the data
// committed under each detector's traindata/ (see the NOTICE there):
// the PII name and place tagger and the content toxicity model. `make
// train` runs it; the output is identical byte for byte on every run.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/dspipe/dspipe/internal/content"
	"github.com/dspipe/dspipe/internal/pii"
)

func main() {
	piiData := flag.String("pii-data", "internal/pii/traindata", "the tagger's training data")
	piiOut := flag.String("pii-out", "internal/pii/tagger.bin.gz", "where the tagger's model is written")
	toxData := flag.String("content-data", "internal/content/traindata", "the toxicity model's training data")
	toxOut := flag.String("content-out", "internal/content/toxicity.bin.gz", "where the toxicity model is written")
	cv := flag.Bool("cv", false, "cross-validate the tagger on held-out training texts instead (how its margin was chosen)")
	flag.Parse()
	if *cv {
		if err := pii.CrossValidate(*piiData, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "train:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*piiData, *piiOut, *toxData, *toxOut); err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
}

func run(piiData, piiOut, toxData, toxOut string) error {
	for _, m := range []struct {
		name, data, out string
		train           func(string) ([]byte, error)
	}{
		{"pii tagger", piiData, piiOut, pii.TrainTagger},
		{"toxicity model", toxData, toxOut, content.TrainToxicity},
	} {
		b, err := m.train(m.data)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if err := os.WriteFile(m.out, b, 0o644); err != nil {
			return err
		}
		fmt.Printf("%s: %d bytes\n", m.out, len(b))
	}
	return nil
}
