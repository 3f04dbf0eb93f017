package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/gen"
)

const twoUsers = "alice-token-1:alice:submitter,bobby-token-1:bob:submitter,viewer-token:vic:viewer," +
	"review-token:rita:reviewer,audit-token-1:audrey:auditor,admin-token-1:root:admin,service-token:svc:service"

// as is the stack's API seen with another token.
func (s *stack) as(token string) *client.Client { return client.New(s.client.Base, token) }

// runAs submits as c and waits for the execution's terminal status.
func runAs(t *testing.T, s *stack, c *client.Client, req events.Request) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	id, err := c.Submit(ctx, req)
	require.NoError(t, err)
	var last client.Message
	require.NoError(t, c.Watch(ctx, id, 0, func(m client.Message) error { last = m; return nil }))
	return id, s.waitStatus(t, id, last.Data["status"].(string)).Status
}

func apiStatus(err error) int {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// filesMatch checks every file a manifest lists against its SHA-256.
func filesMatch(t *testing.T, dir, wantExec string) {
	t.Helper()
	var m struct {
		ExecutionID string              `json:"execution_id"`
		Files       []events.OutputFile `json:"files"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &m))
	require.Equal(t, wantExec, m.ExecutionID)
	for _, f := range m.Files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name))
		require.NoError(t, err, f.Name)
		sum := sha256.Sum256(b)
		require.Equal(t, f.SHA256, hex.EncodeToString(sum[:]), f.Name)
	}
}

// TestOneUserCannotTakeAnothersOutput is finding 1: Bob naming Alice's
// destination is refused with a 409, as is a destination inside hers;
// new_version is for the owner only and writes beside the old output,
// which stays byte for byte as it was.
func TestOneUserCannotTakeAnothersOutput(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{tokens: twoUsers})
	alice, bob := s.as("alice-token-1"), s.as("bobby-token-1")
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 300, Sources: 1, Format: "chatml", Seed: 7})
	require.NoError(t, err)
	req := localRequest(sum.Files...)
	req.Output.Destination = "shared"
	first, status := runAs(t, s, alice, req)
	require.Equal(t, "completed", status)
	shared := filepath.Join(s.out, "shared")
	filesMatch(t, shared, first)

	ctx := context.Background()
	for _, tc := range []struct {
		dest, overwrite string
	}{{"shared", ""}, {"shared", events.OverwriteNewVersion}, {"shared/inner", ""}} {
		r := req
		r.Output.Destination, r.Output.Overwrite = tc.dest, tc.overwrite
		_, err := bob.Submit(ctx, r)
		require.Equal(t, 409, apiStatus(err), "bob -> %s %s: %v", tc.dest, tc.overwrite, err)
	}
	_, err = alice.Submit(ctx, req)
	require.Equal(t, 409, apiStatus(err), "the owner too must ask for a new version")
	require.ErrorContains(t, err, "new_version")

	// An execution's default destination is its id: taken as well.
	plain := req
	plain.Output.Destination = ""
	third, status := runAs(t, s, alice, plain)
	require.Equal(t, "completed", status)
	plain.Output.Destination = third
	_, err = bob.Submit(ctx, plain)
	require.Equal(t, 409, apiStatus(err), "%v", err)

	r := req
	r.Output.Overwrite = events.OverwriteNewVersion
	second, status := runAs(t, s, alice, r)
	require.Equal(t, "completed", status)
	x, err := s.store.Execution(ctx, second)
	require.NoError(t, err)
	require.Equal(t, shared+".v2", x.OutputDir)
	filesMatch(t, shared, first)
	filesMatch(t, shared+".v2", second)
}

// TestDestinationThroughALinkIsRefused is finding 3 seen from the API: a
// symbolic link inside the output root pointing outside it is never
// followed, and nothing is written where it points.
func TestDestinationThroughALinkIsRefused(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{})
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 50, Sources: 1, Format: "chatml", Seed: 8})
	require.NoError(t, err)
	outside := t.TempDir()
	require.NoError(t, os.MkdirAll(s.out, 0o750))
	require.NoError(t, os.Symlink(outside, filepath.Join(s.out, "evil")))
	req := localRequest(sum.Files...)
	req.Output.Destination = "evil/run"
	_, err = s.client.Submit(context.Background(), req)
	require.Equal(t, 400, apiStatus(err), "%v", err)
	require.ErrorContains(t, err, "symbolic link")
	ents, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Empty(t, ents)
}

// TestDeploymentsSharingAClusterDoNotFenceEachOther: two deployments on
// one Kafka cluster under different KAFKA_TOPIC_PREFIX values, both with
// instance id 0, run executions at the same time. Before the prefix also
// named transactional ids and consumer groups, each fenced the other's
// producers and joined the other's groups.
func TestDeploymentsSharingAClusterDoNotFenceEachOther(t *testing.T) {
	t.Parallel()
	a := startStack(t, stackOpts{prefix: "a."})
	b := startStack(t, stackOpts{shared: a, prefix: "b."})
	done := make(chan string, 2)
	for _, s := range []*stack{a, b} {
		sum, err := gen.Write(gen.Options{Dir: s.data, Records: 3000, Sources: 2, Format: "chatml", Seed: 5})
		require.NoError(t, err)
		go func() {
			id, msgs := s.run(t, localRequest(sum.Files...))
			x := waitProjected(t, s, id, msgs)
			done <- fmt.Sprintf("%s %d", x.Status, x.Valid)
		}()
	}
	for range 2 {
		select {
		case got := <-done:
			require.Equal(t, "completed 3000", got)
		case <-time.After(3 * time.Minute):
			t.Fatal("an execution never finished")
		}
	}
}
