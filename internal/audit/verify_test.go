package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
)

// trail builds an execution's trail as the processor writes it: events,
// a checkpoint after each stage boundary, a final seal after the end.
func trail(t *testing.T, s *Signer) []events.Envelope {
	t.Helper()
	var c events.Chain
	var out []events.Envelope
	at := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	add := func(p events.Payload) {
		e, err := events.New("test", "ds_1", at, p)
		require.NoError(t, err)
		c.Seal(&e)
		out = append(out, e)
		at = at.Add(time.Second)
	}
	add(events.ExecutionRequested{UserID: "alice"})
	add(events.ExecutionStarted{})
	add(events.StageCompleted{Stage: events.StageValidation, Counts: events.Counts{Received: 10, Valid: 9, Rejected: 1}})
	add(s.Seal(events.TypeChainCheckpoint, "ds_1", c.Seq, c.Hash))
	add(events.StageCompleted{Stage: events.StageOutput})
	add(s.Seal(events.TypeChainCheckpoint, "ds_1", c.Seq, c.Hash))
	add(events.ExecutionCompleted{Counts: events.Counts{Received: 10, Valid: 9, Rejected: 1, Total: 10}})
	add(s.Seal(events.TypeExecutionSealed, "ds_1", c.Seq, c.Hash))
	return out
}

func newSigner(t *testing.T) (*Signer, Keys) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	s := NewSigner(priv)
	return s, Keys{s.KeyID(): s.PublicKey()}
}

func readModel() ReadModel {
	return ReadModel{UserID: "alice", Status: "completed", LastSeq: 8, Received: 10, Valid: 9, Rejected: 1}
}

// rehash rebuilds the plain SHA-256 chain from position i on, as anyone
// with write access could after an edit; only the signatures stop them.
func rehash(envs []events.Envelope, from int) {
	for i := from; i < len(envs); i++ {
		if i > 0 {
			envs[i].PrevHash = envs[i-1].Hash
		} else {
			envs[i].PrevHash = ""
		}
		envs[i].Hash = events.ComputeHash(&envs[i])
	}
}

// TestVerifyNamesTheFirstBrokenPosition covers each way a trail can be
// cut or edited: the untouched trail verifies; a changed, deleted (middle
// or end), reordered or rebuilt trail, and a read model whose owner or
// counts were changed, fail at the position named.
func TestVerifyNamesTheFirstBrokenPosition(t *testing.T) {
	t.Parallel()
	s, keys := newSigner(t)
	good := trail(t, s)
	r := VerifyExecution("ds_1", good, keys)
	CheckReadModel(&r, readModel())
	require.True(t, r.OK(), r.Problem)
	require.True(t, r.Sealed)
	require.Equal(t, 3, r.Seals)
	require.EqualValues(t, 8, r.SignedThrough)

	cases := []struct {
		name    string
		mutate  func([]events.Envelope) []events.Envelope
		rm      func(*ReadModel)
		at      uint64
		problem string
	}{
		{"an event changed", func(e []events.Envelope) []events.Envelope {
			e[2].Data = json.RawMessage(`{"stage":"validation","counts":{"received":10,"valid":10,"rejected":0}}`)
			return e
		}, nil, 3, "was changed"},
		{"an event changed and the chain re-hashed", func(e []events.Envelope) []events.Envelope {
			e[2].Data = json.RawMessage(`{"stage":"validation","counts":{"received":10,"valid":10,"rejected":0}}`)
			rehash(e, 2)
			return e
		}, nil, 4, "re-hashed"},
		{"an event deleted from the middle", func(e []events.Envelope) []events.Envelope {
			return append(e[:4:4], e[5:]...)
		}, nil, 5, "event 5 is missing"},
		{"the final seal deleted", func(e []events.Envelope) []events.Envelope { return e[:7] }, nil, 8, "without a final signed seal"},
		{"the last events deleted, read model untouched", func(e []events.Envelope) []events.Envelope { return e[:6] }, nil, 7, "events 7 to 8 are missing"},
		{"the last events deleted and the rest re-hashed", func(e []events.Envelope) []events.Envelope {
			e = e[:6]
			rehash(e, 0)
			e[3].Data = e[5].Data // even a seal copied over does not sign the new head
			rehash(e, 3)
			return e
		}, nil, 4, ""},
		{"two events reordered", func(e []events.Envelope) []events.Envelope {
			e[1], e[2] = e[2], e[1]
			return e
		}, nil, 2, "out of order"},
		{"a seal moved onto other events", func(e []events.Envelope) []events.Envelope {
			e[4].Data, e[5].Data = e[5].Data, e[4].Data
			rehash(e, 4)
			return e
		}, nil, 6, "not the event right before it"},
		{"the read model's owner changed", nil, func(m *ReadModel) { m.UserID = "mallory" }, 1, "belongs to \"mallory\""},
		{"the read model's counts changed", nil, func(m *ReadModel) { m.Valid = 10 }, 8, "counts"},
		{"an unknown key", func(e []events.Envelope) []events.Envelope {
			other, _ := newSigner(t)
			var c events.Chain
			for i := range e[:7] {
				c.Seq, c.Hash = e[i].Seq, e[i].Hash
			}
			fake, err := events.New("test", "ds_1", e[7].Time, other.Seal(events.TypeExecutionSealed, "ds_1", c.Seq, c.Hash))
			require.NoError(t, err)
			c.Seal(&fake)
			e[7] = fake
			return e
		}, nil, 8, "not a trusted key"},
	}
	for _, tc := range cases {
		envs := append([]events.Envelope(nil), trail(t, s)...)
		if tc.mutate != nil {
			envs = tc.mutate(envs)
		}
		rm := readModel()
		if tc.rm != nil {
			tc.rm(&rm)
		}
		r := VerifyExecution("ds_1", envs, keys)
		CheckReadModel(&r, rm)
		require.False(t, r.OK(), tc.name)
		require.Equal(t, tc.at, r.BrokenAt, "%s: %s", tc.name, r.Problem)
		require.Contains(t, r.Problem, tc.problem, tc.name)
	}
}

// TestRunningTrailIsNotedNotFailed: an execution still running has events
// after its last checkpoint; that is a note, not a failure.
func TestRunningTrailIsNotedNotFailed(t *testing.T) {
	t.Parallel()
	s, keys := newSigner(t)
	envs := trail(t, s)[:5]
	r := VerifyExecution("ds_1", envs, keys)
	require.True(t, r.OK(), r.Problem)
	require.False(t, r.Sealed)
	require.Len(t, r.Notes, 1)
	require.Contains(t, r.Notes[0], "still running")
}

// TestKeyFilesRoundTrip: the key written is PKCS #8 PEM (openssl's
// format), mode 0600, read back to the same key; its public PEM parses.
func TestKeyFilesRoundTrip(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/k.pem"
	s, created, err := LoadOrCreateKey(path, true)
	require.NoError(t, err)
	require.True(t, created)
	again, created, err := LoadOrCreateKey(path, false)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, s.KeyID(), again.KeyID())
	keys, err := ParsePublicKeys(PublicKeyPEM(s.PublicKey()))
	require.NoError(t, err)
	require.Contains(t, keys, s.KeyID())
	_, _, err = LoadOrCreateKey(t.TempDir()+"/missing.pem", false)
	require.Error(t, err, "an explicit key that does not exist is an error, never made silently")
}
