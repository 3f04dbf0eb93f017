package api

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStagesDocExampleIsAValidRequest keeps docs/STAGES.md true: its
// example request passes the API's validation.
func TestStagesDocExampleIsAValidRequest(t *testing.T) {
	b, err := os.ReadFile("../../docs/STAGES.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(b), "```json\n")
	require.True(t, ok)
	example, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	_, err = decodeRequest(strings.NewReader(example))
	require.NoError(t, err)
}
