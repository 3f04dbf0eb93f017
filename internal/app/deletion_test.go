package app_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/crypt"
	"github.com/dspipe/dspipe/internal/keys"
	"github.com/dspipe/dspipe/internal/store"
	"github.com/dspipe/dspipe/internal/testwait"
	"github.com/dspipe/dspipe/internal/trail"
	"github.com/dspipe/dspipe/internal/wire"
)

// TestDeletingAnExecutionsDataShredsIt is the right to deletion for an
// execution: after DELETE …/data its outputs are gone, its data key is
// destroyed, an independent consumer reading its records gets ciphertext
// that no key opens (every keyring version tried), and its trail still
// verifies and shows the deletion.
func TestDeletingAnExecutionsDataShredsIt(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{tokens: twoUsers})
	alice, bob := s.as("alice-token-1"), s.as("bobby-token-1")
	in := filepath.Join(s.data, "canary.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(canaryRecords), 0o644))
	id, status := runAs(t, s, alice, localRequest(in))
	require.Equal(t, "completed", status)
	ctx := context.Background()
	x, err := s.store.Execution(ctx, id)
	require.NoError(t, err)
	require.DirExists(t, x.OutputDir)

	err = alice.Do(ctx, "DELETE", "/"+id+"/data", map[string]string{"confirm": "yes"}, nil)
	require.Equal(t, 400, apiStatus(err), "the id must be confirmed")
	err = bob.Do(ctx, "DELETE", "/"+id+"/data", map[string]string{"confirm": id}, nil)
	require.Equal(t, 404, apiStatus(err), "not bob's to delete")
	require.NoError(t, alice.Do(ctx, "DELETE", "/"+id+"/data", map[string]string{"confirm": id}, nil))
	testwait.For(t, 30*time.Second, "the deletion never reached the read model", func() bool {
		x, err = s.store.Execution(ctx, id)
		return err == nil && x.DataDeletedAt != nil
	})
	require.NoDirExists(t, x.OutputDir, "the outputs are deleted")
	_, _, err = s.store.DataKey(ctx, id)
	require.ErrorIs(t, err, store.ErrKeyDestroyed)
	_, err = s.keys.Get(ctx, id, true)
	require.ErrorIs(t, err, keys.ErrShredded, "no key can be made again for it")
	err = alice.Do(ctx, "DELETE", "/"+id+"/data", map[string]string{"confirm": id}, nil)
	require.Equal(t, 409, apiStatus(err), "already deleted")

	// An independent consumer: every record of the execution on the raw
	// and staged topics is ciphertext that no keyring version opens.
	keyring, _, err := crypt.LoadKeyring(s.cfg.Keyring, false)
	require.NoError(t, err)
	versions, _ := keyring.Versions()
	var kinds []string
	tp := s.cfg.Kafka.Topics()
	for _, topic := range []string{tp.Raw, tp.Staged} {
		place := crypt.PlaceRaw
		if topic == tp.Staged {
			place = crypt.PlaceStaged
		}
		for p := int32(0); p < s.cfg.Kafka.Partitions; p++ {
			require.NoError(t, s.cfg.Kafka.ReadPartition(ctx, topic, p, 0, func(r *kgo.Record) error {
				m, err := wire.ReadMeta(r)
				if string(r.Key) != id || err != nil || (m.Kind != wire.KindRecord && m.Kind != wire.KindStaged && m.Kind != wire.KindQuarantined) {
					return nil
				}
				kinds = append(kinds, m.Kind)
				require.NotContains(t, string(r.Value), "Zelda")
				ad := crypt.AD(nil, id, place, m.Kind, m.Source, m.Position)
				for _, v := range versions {
					kek, err := keyring.KEK(v)
					require.NoError(t, err)
					_, err = kek.Open(nil, r.Value, ad)
					require.True(t, errors.Is(err, crypt.ErrOpen), "keyring version %d opened a record", v)
				}
				return nil
			}))
		}
	}
	require.Contains(t, kinds, wire.KindRecord)
	require.Contains(t, kinds, wire.KindStaged)

	// The trail still verifies, sealed, and says what happened.
	tr, err := trail.FromPostgres(ctx, s.store, id)
	require.NoError(t, err)
	keysPub, err := trail.PublicKeyFromAPI(ctx, alice)
	require.NoError(t, err)
	testwait.For(t, 20*time.Second, "the trail never showed a sealed deletion", func() bool {
		tr, _ = trail.FromPostgres(ctx, s.store, id)
		r, _ := tr.Verify(keysPub)
		return r.OK() && r.Sealed && strings.Contains(string(tr.Raw[len(tr.Raw)-2]), events.TypeExecutionDataDeleted)
	})
}
