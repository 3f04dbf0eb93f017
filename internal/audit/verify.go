package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"

	"github.com/dspipe/dspipe/events"
)

// Report is what verifying one chain found.
type Report struct {
	Subject string `json:"subject"`
	// Events is how many events the trail holds; LastSeq the last one's.
	Events  int    `json:"events"`
	LastSeq uint64 `json:"last_seq"`
	// Seals counts the valid signed seals (checkpoints included);
	// SignedThrough is the last seq a valid seal covers.
	Seals         int    `json:"seals"`
	SignedThrough uint64 `json:"signed_through"`
	// Sealed says the trail ends with a final seal over everything before it.
	Sealed bool `json:"sealed"`
	// What the events say about the execution, for comparing with a read
	// model: its owner, final status ("" while it runs) and final counts.
	Owner  string         `json:"owner,omitempty"`
	Status string         `json:"status,omitempty"`
	Counts *events.Counts `json:"counts,omitempty"`
	// BrokenAt is the first position that does not verify (0 when none),
	// Problem says what is wrong there.
	BrokenAt uint64 `json:"broken_at,omitempty"`
	Problem  string `json:"problem,omitempty"`
	// Notes are facts that are not failures, such as events after the
	// last checkpoint of an execution that is still running.
	Notes []string `json:"notes,omitempty"`
}

// OK reports whether the trail verified.
func (r Report) OK() bool { return r.Problem == "" }

func (r *Report) fail(at uint64, format string, args ...any) {
	if r.Problem == "" {
		r.BrokenAt, r.Problem = at, fmt.Sprintf(format, args...)
	}
}

// finalSeal is the seal type that must end a finished chain of the given
// kind of trail.
func finalSeal(access bool) string {
	if access {
		return events.TypeAccessSealed
	}
	return events.TypeExecutionSealed
}

// VerifyExecution checks an execution's trail, in the order given: every
// event continues the hash chain from seq 1 with no gap, every seal is
// signed by a trusted key over the event right before it, and a finished
// execution's trail ends with a final seal. It reports the first position
// that fails.
func VerifyExecution(subject string, envs []events.Envelope, keys Keys) Report {
	return verify(subject, envs, keys, false)
}

// VerifyAccess checks one access chain the same way. A chain that was
// closed cleanly ends with a seal; one whose API instance crashed may end
// with unsigned records after its last periodic seal, which is noted.
func VerifyAccess(subject string, envs []events.Envelope, keys Keys) Report {
	return verify(subject, envs, keys, true)
}

func verify(subject string, envs []events.Envelope, keys Keys, access bool) Report {
	r := Report{Subject: subject, Events: len(envs)}
	if len(envs) == 0 {
		r.fail(1, "the trail is empty")
		return r
	}
	var c events.Chain
	finished := false
	for i := range envs {
		e := &envs[i]
		want := c.Seq + 1
		switch {
		case e.Subject != subject:
			r.fail(want, "event %d belongs to %q, not to this trail", want, e.Subject)
		case e.Seq > want && later(envs[i+1:], want):
			r.fail(want, "event %d is out of order: it appears after event %d", want, e.Seq)
		case e.Seq > want:
			r.fail(want, "event %d is missing: the trail goes from %d to %d", want, c.Seq, e.Seq)
		case e.Seq < want:
			r.fail(want, "event %d is out of order: seq %d appears where %d belongs", want, e.Seq, want)
		case e.PrevHash != c.Hash:
			r.fail(want, "event %d does not follow event %d (its prevhash differs): an event before it was changed, removed or reordered", want, c.Seq)
		case events.ComputeHash(e) != e.Hash:
			r.fail(want, "event %d was changed: its content does not match its hash", want)
		}
		if !r.OK() {
			return r
		}
		if events.IsSeal(e.Type) {
			if err := checkSeal(e, keys); err != nil {
				r.fail(e.Seq, "event %d: %v", e.Seq, err)
				return r
			}
			r.Seals++
			r.SignedThrough = e.Seq
		}
		if !access {
			observe(&r, e, &finished)
		}
		c.Seq, c.Hash = e.Seq, e.Hash
	}
	r.LastSeq = c.Seq
	last := envs[len(envs)-1]
	r.Sealed = last.Type == finalSeal(access)
	switch {
	case r.Sealed:
	case finished:
		r.fail(c.Seq+1, "the execution finished but its trail ends at event %d without a final signed seal (the last seal covers event %d): events after it were removed, or added without the signing key", c.Seq, sealedBefore(r))
	case access:
		r.Notes = append(r.Notes, fmt.Sprintf("%d records after the last seal (event %d): the chain is still being written, or its API instance stopped without closing it", c.Seq-r.SignedThrough, r.SignedThrough))
	default:
		r.Notes = append(r.Notes, fmt.Sprintf("%d events after the last signed checkpoint (event %d): the execution is still running", c.Seq-r.SignedThrough, r.SignedThrough))
	}
	return r
}

// later reports whether seq appears among envs.
func later(envs []events.Envelope, seq uint64) bool {
	for i := range envs {
		if envs[i].Seq == seq {
			return true
		}
	}
	return false
}

func sealedBefore(r Report) uint64 {
	if r.SignedThrough == 0 {
		return 0
	}
	return r.SignedThrough - 1
}

func checkSeal(e *events.Envelope, keys Keys) error {
	p, err := events.Parse(*e)
	if err != nil {
		return err
	}
	s := p.(*events.Seal)
	if s.Seq != e.Seq-1 {
		return fmt.Errorf("the seal covers event %d, not the event right before it", s.Seq)
	}
	if s.Hash != e.PrevHash {
		return fmt.Errorf("the seal signed event %d with another hash: events up to it were changed and the chain re-hashed", s.Seq)
	}
	pub, ok := keys[s.KeyID]
	if !ok {
		return fmt.Errorf("the seal is signed with key %q, which is not a trusted key", s.KeyID)
	}
	sig, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil || !ed25519.Verify(pub, events.SealMessage(e.Type, e.Subject, s.Seq, s.Hash), sig) {
		return fmt.Errorf("the seal's signature does not verify: the chain was rebuilt or the seal forged")
	}
	return nil
}

// observe folds what the trail says about the execution into the report.
func observe(r *Report, e *events.Envelope, finished *bool) {
	p, err := events.Parse(*e)
	if err != nil {
		return
	}
	switch d := p.(type) {
	case *events.ExecutionRequested:
		r.Owner = d.UserID
	case *events.ExecutionCompleted:
		*finished, r.Status = true, "completed"
		c := d.Counts
		r.Counts = &c
	case *events.ExecutionFailed:
		*finished, r.Status = true, "failed"
	case *events.ExecutionCancelled:
		*finished, r.Status = true, "cancelled"
	}
}

// ReadModel is what a read model says about an execution.
type ReadModel struct {
	UserID   string
	Status   string
	LastSeq  int64
	Received int64
	Valid    int64
	Rejected int64
}

// CheckReadModel compares a read model with what the verified trail says:
// the owner, how many events it has seen, the final status and counts. A
// read model that has seen more events than the trail holds means the
// trail lost its end.
func CheckReadModel(r *Report, m ReadModel) {
	if !r.OK() {
		return
	}
	switch {
	case m.LastSeq > int64(r.LastSeq):
		r.fail(r.LastSeq+1, "events %d to %d are missing: the read model has projected %d events, the trail holds %d", r.LastSeq+1, m.LastSeq, m.LastSeq, r.LastSeq)
	case m.UserID != r.Owner:
		r.fail(1, "the read model says the execution belongs to %q, its requested event says %q", m.UserID, r.Owner)
	case (m.Status == "completed" || m.Status == "failed" || m.Status == "cancelled") && m.Status != r.Status:
		r.fail(r.LastSeq+1, "the read model says the execution is %s, but the trail holds no %s event", m.Status, m.Status)
	case r.Counts != nil && (m.Received != r.Counts.Received || m.Valid != r.Counts.Valid || m.Rejected != r.Counts.Rejected):
		r.fail(r.LastSeq, "the read model's counts (received %d, valid %d, rejected %d) differ from the completed event's (%d, %d, %d)",
			m.Received, m.Valid, m.Rejected, r.Counts.Received, r.Counts.Valid, r.Counts.Rejected)
	}
}
