// Package stages is the one list of the stages, in the order they run:
// the per-record stages after standardization (Record), then the dataset
// stages (Dataset). Acquisition, validation and standardization come
// before them (every record needs them to become a record at all); output,
// the writer, comes last for every execution. A new stage is a package implementing pipeline.RecordStage
// or pipeline.DatasetStage and one line here.
package stages

import (
	"github.com/dspipe/dspipe/internal/balance"
	"github.com/dspipe/dspipe/internal/bias"
	"github.com/dspipe/dspipe/internal/fusion"
	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/quality"
	"github.com/dspipe/dspipe/internal/safety"
)

// Record is the list: quality assessment, safety validation, bias
// detection.
func Record() []pipeline.RecordStage {
	return []pipeline.RecordStage{quality.Stage{}, safety.Stage{}, bias.Stage{}}
}

// Dataset is the stages that need every record before they decide, in
// order: fusion, then balancing over what fusion kept. Output, the writer,
// follows them for every execution.
func Dataset() []pipeline.DatasetStage {
	return []pipeline.DatasetStage{fusion.Stage{}, balance.Stage{}}
}
