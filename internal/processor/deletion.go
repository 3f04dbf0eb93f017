package processor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/sink"
)

// deleteData carries out the right to deletion for a finished execution:
// its outputs are deleted (local directory or S3 prefix), its data key is
// destroyed, so every copy of its records on Kafka stays ciphertext that
// no key opens, and an event records it in the trail. Each step can run
// again after a crash: a redelivered command finds nothing left to delete.
func (p *Processor) deleteData(ctx context.Context, x *execState, by string) error {
	files, err := p.deleteOutput(ctx, x.outputDir)
	if err != nil {
		return fmt.Errorf("processor: delete the output of %s: %w", x.id, err)
	}
	if err := p.cfg.Keys.Destroy(ctx, x.id); err != nil {
		return fmt.Errorf("processor: destroy the data key of %s: %w", x.id, err)
	}
	x.dk = nil
	return p.emit(x, events.ExecutionDataDeleted{By: by, OutputDir: x.outputDir, FilesDeleted: files, KeyDestroyed: true})
}

// deleteOutput removes an output, returning how many files it held.
func (p *Processor) deleteOutput(ctx context.Context, dir string) (int, error) {
	if dir == "" {
		return 0, nil
	}
	if d, ok, err := sink.ParseS3(dir); ok {
		if err != nil {
			return 0, err
		}
		if p.s3 == nil {
			if p.s3, err = sink.NewS3Client(ctx, p.cfg.OutputS3Region, p.cfg.OutputS3Endpoint); err != nil {
				return 0, err
			}
		}
		return sink.DeleteS3Prefix(ctx, p.s3, d)
	}
	root, err := sink.Root(p.cfg.OutputRoot)
	if err != nil {
		return 0, err
	}
	final, err := sink.Confine(root, dir)
	if err != nil {
		return 0, err
	}
	if err := sink.CheckBeneath(root, filepath.Dir(final)); err != nil {
		return 0, err
	}
	ents, err := os.ReadDir(final)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return len(ents), os.RemoveAll(final)
}
