// Package balance is stage 8: it selects records so that groups over a key
// the request names (a metadata field, the source, a bias axis) reach
// target proportions or stay under a cap. Selection is deterministic: each
// group's records are ranked by a hash of the seed and the record id, and
// the first ones in that order are kept, so the same input and settings
// select the same records.
package balance

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/settings"
)

// Version of the balancing logic, in lineage and the manifest.
const Version = "1"

// None is the group of a record without a value for the key.
const None = "(none)"

// Settings are a request's processing.balancing object.
type Settings struct {
	// Key is "source", "metadata.<field>" or "bias.<axis>".
	Key string `json:"key"`
	// Targets are group shares (normalised); groups not named get none.
	Targets map[string]float64 `json:"targets,omitempty"`
	// Cap is the most records a group keeps (0: no cap).
	Cap int64 `json:"cap,omitempty"`
	// Oversample repeats records of groups below their target share
	// (each repeat is marked in its lineage) instead of shrinking the
	// others to fit.
	Oversample bool `json:"oversample,omitempty"`
	// Seed changes which records are picked, reproducibly.
	Seed uint64 `json:"seed,omitempty"`
}

// ParseRequest validates a request's processing.balancing; ok is false
// when there is none.
func ParseRequest(raw []byte) (Settings, bool, error) {
	s, absent, err := settings.Object[Settings](raw, "processing.balancing", "key, targets, cap, oversample and seed")
	if absent || err != nil {
		return s, false, err
	}
	switch {
	case s.Key == "source", strings.HasPrefix(s.Key, "metadata.") && len(s.Key) > len("metadata."), strings.HasPrefix(s.Key, "bias.") && len(s.Key) > len("bias."):
	default:
		return s, false, errors.New(`processing.balancing.key: must be "source", "metadata.<field>" (for example metadata.topic) or "bias.<axis>" (for example bias.gender)`)
	}
	if len(s.Targets) == 0 && s.Cap <= 0 {
		return s, false, errors.New("processing.balancing: give targets (group shares) or a cap (most records per group)")
	}
	if s.Targets != nil && len(s.Targets) == 0 {
		return s, false, errors.New("processing.balancing.targets: name at least one group, or leave targets out")
	}
	for g, v := range s.Targets {
		if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return s, false, fmt.Errorf("processing.balancing.targets.%s: a share must be a positive number; leave a group out to give it none", g)
		}
	}
	if s.Cap < 0 {
		return s, false, errors.New("processing.balancing.cap: must be 0 (none) or more")
	}
	if s.Oversample && len(s.Targets) == 0 {
		return s, false, errors.New("processing.balancing.oversample: needs targets")
	}
	return s, true, nil
}

// Item is one record offered for selection.
type Item struct {
	ID    string
	Group string
}

// Group is one group's figures; Summary the achieved distribution
// against the target.
type (
	Group   = events.BalancingGroup
	Summary = events.BalancingSummary
)

// Plan is the selection: Copies[i] is how many times item i is written (0:
// dropped, 1: kept, more: oversampled).
type Plan struct {
	Copies  []int32
	Summary Summary
}

func rankOf(seed uint64, id string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(seed >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(id))
	return h.Sum64()
}

// Select decides the copies of every item.
func Select(s Settings, items []Item) Plan {
	var x Selection
	for _, it := range items {
		x.Add(s.Seed, it.ID, it.Group)
	}
	p := Plan{Copies: make([]int32, len(items))}
	for i := range p.Copies {
		p.Copies[i] = 1
	}
	p.Summary = x.Choose(s, p.Copies)
	return p
}

// Selection is what balancing holds of each record, packed: its place in
// the selection order (a hash of the seed and its id) and its group's
// number, 12 bytes a record however long its id and group name.
type Selection struct {
	order  []uint64
	group  []int32
	names  []string // by number
	number map[string]int32
}

// Add appends the next record.
func (x *Selection) Add(seed uint64, id, group string) {
	if x.number == nil {
		x.number = map[string]int32{}
	}
	g, ok := x.number[group]
	if !ok {
		g = int32(len(x.names))
		x.names = append(x.names, group)
		x.number[group] = g
	}
	x.order = append(x.order, rankOf(seed, id))
	x.group = append(x.group, g)
}

// Choose sets how many times each record the stages before kept
// (copies[i] > 0) is written: 0, 1, or more when oversampled; a record
// left out before stays out.
func (x *Selection) Choose(s Settings, copies []int32) Summary {
	byGroup := make([][]int32, len(x.names))
	records := int64(0)
	for i, c := range copies {
		if c > 0 {
			byGroup[x.group[i]] = append(byGroup[x.group[i]], int32(i))
			records++
		}
	}
	members := map[string][]int32{}
	for g, idx := range byGroup {
		if len(idx) > 0 {
			members[x.names[g]] = idx
		}
	}
	names := make([]string, 0, len(members)+len(s.Targets))
	for g := range members {
		names = append(names, g)
	}
	for g := range s.Targets {
		if _, ok := members[g]; !ok {
			names = append(names, g)
		}
	}
	sort.Strings(names)
	share := map[string]float64{}
	var sum float64
	for _, v := range s.Targets {
		sum += v
	}
	for g, v := range s.Targets {
		share[g] = v / sum
	}
	quota := map[string]int64{}
	if len(s.Targets) > 0 {
		// The largest total the groups can fill at their shares, or with
		// oversampling the records available.
		total := math.Inf(1)
		if s.Oversample {
			total = float64(records)
		} else {
			for g, sh := range share {
				if sh > 0 {
					total = math.Min(total, float64(len(members[g]))/sh)
				}
			}
		}
		for _, g := range names {
			quota[g] = int64(math.Floor(share[g]*total + 1e-9))
		}
	} else {
		for _, g := range names {
			quota[g] = int64(len(members[g]))
		}
	}
	if s.Cap > 0 {
		for g, q := range quota {
			quota[g] = min(q, s.Cap)
		}
	}
	for i, c := range copies {
		if c > 0 {
			copies[i] = 0
		}
	}
	summary := Summary{Key: s.Key, Records: records}
	for _, g := range names {
		idx := members[g]
		slices.SortFunc(idx, func(a, b int32) int {
			ra, rb := x.order[a], x.order[b]
			switch {
			case ra < rb:
				return -1
			case ra > rb:
				return 1
			}
			return int(a - b)
		})
		q := quota[g]
		gr := Group{Group: g, Available: int64(len(idx)), Target: share[g]}
		if len(idx) > 0 {
			for k := int64(0); k < q; k++ {
				copies[idx[k%int64(len(idx))]]++
				if k >= int64(len(idx)) {
					gr.Repeated++
				}
			}
		}
		gr.Selected = min(q, int64(len(idx))) + gr.Repeated
		summary.Selected += gr.Selected
		summary.Groups = append(summary.Groups, gr)
	}
	for i := range summary.Groups {
		if summary.Selected > 0 {
			summary.Groups[i].Achieved = math.Round(float64(summary.Groups[i].Selected)/float64(summary.Selected)*1e4) / 1e4
		}
	}
	return summary
}
