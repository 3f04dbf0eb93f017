// Package stages is the one list of the per-record stages that run after
// standardization, in the order they run. Acquisition, validation and
// standardization come before them (every record needs them to become a
// record at all); fusion, balancing and output come after (they need every
// record). A new per-record stage is a package implementing
// pipeline.RecordStage and one line here.
package stages

import (
	"github.com/dspipe/dspipe/internal/bias"
	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/quality"
	"github.com/dspipe/dspipe/internal/safety"
)

// Record is the list: quality assessment, safety validation, bias
// detection.
func Record() []pipeline.RecordStage {
	return []pipeline.RecordStage{quality.Stage{}, safety.Stage{}, bias.Stage{}}
}
