package api

import (
	"math"
	"time"
)

// The progress figures the status endpoint and the live feed both give.
// The records stages take 95% (the dataset stages and output the rest).
// While acquisition runs the total is the processor's estimate from the
// sources' bytes (total 0, estimate > 0), and progress stays short of 95.

// progressTotal is the total to measure against: the records acquisition
// produced, or while it runs the estimate (0: neither known).
func progressTotal(total, estimate int64) int64 {
	if total > 0 {
		return total
	}
	return estimate
}

// recordsProgress is overall_progress from the records processed.
func recordsProgress(received, total, estimate int64) float64 {
	t := progressTotal(total, estimate)
	if t <= 0 {
		return 0
	}
	p := math.Min(95*float64(received)/float64(t), 95)
	if total == 0 {
		p = math.Min(p, 94)
	}
	return p
}

// estimatedEnd is when the records still to come will be processed at
// rate, from at; false when it cannot be said.
func estimatedEnd(at time.Time, received, total int64, rate float64) (time.Time, bool) {
	if rate <= 0 || total <= received {
		return time.Time{}, false
	}
	return at.Add(time.Duration(float64(total-received) / rate * float64(time.Second))), true
}
