// Package clock has the one way the services wait: for a duration or until
// their context ends, whichever comes first. No retry or pause in the
// services ignores cancellation.
package clock

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends; it returns ctx.Err() in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
