package processor

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/keys"
	"github.com/dspipe/dspipe/internal/wire"
)

// downStore is a key store that does not answer.
type downStore struct{}

var errDown = errors.New("key store: connection reset")

func (downStore) PutDataKey(context.Context, string, string, []byte) error { return errDown }
func (downStore) DataKey(context.Context, string) (string, []byte, error)  { return "", nil, errDown }
func (downStore) DestroyDataKey(context.Context, string) error             { return errDown }

// TestAKeyStoreHiccupDoesNotFailTheExecution: when the data key cannot be
// had for a moment (the database dropped the connection), counting an
// outcome aborts the transaction, to be tried again; it does not fail the
// execution as an outcome that does not open would.
func TestAKeyStoreHiccupDoesNotFailTheExecution(t *testing.T) {
	p := &Processor{cfg: Config{Keys: keys.New(downStore{}, nil)}, execs: map[string]*execState{}}
	x := testExec(events.Request{Sources: []events.SourceSpec{{Type: "local"}}})
	x.status = statusRunning
	p.execs[x.id] = x
	r := &kgo.Record{Key: []byte(x.id), Value: []byte("sealed"), Headers: wire.Meta{Kind: KindOutcome, Source: 0, Position: 1, Seq: 1}.Headers()}
	err := p.handleOutcome(context.Background(), r)
	require.ErrorIs(t, err, errDown)
	require.Equal(t, statusRunning, x.status, "still running")
	require.Zero(t, x.counts.Received)
}
