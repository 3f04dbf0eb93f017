package app_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRoleMatrix checks every cell of the role matrix in docs/SECURITY.md,
// read from the document itself, so the table cannot drift from the code.
func TestRoleMatrix(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "SECURITY.md"))
	require.NoError(t, err)
	s := startStack(t, stackOpts{tokens: twoUsers})
	in := filepath.Join(s.data, "in.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(`{"messages":[{"role":"user","content":"hello"},{"role":"assistant","content":"hi there"}]}`+"\n"), 0o644))
	id, status := runAs(t, s, s.as("alice-token-1"), localRequest(in))
	require.Equal(t, "completed", status)

	callers := map[string]string{
		"submitter (owner)": "alice-token-1", "submitter (other)": "bobby-token-1", "viewer": "viewer-token",
		"reviewer": "review-token", "auditor": "audit-token-1", "admin": "admin-token-1", "service": "service-token",
		"no token": "", "wrong token": "wrong-token-123",
	}
	bodies := map[string]string{"/datasets/process": `{}`, "/datasets/{id}/progress": `{"percent": 500}`, "/reviews/{id}/{review}/acknowledge": `{"note":"x"}`,
		"/datasets/{id}/data": `{"confirm": "not this one"}`, "/erasures": `{}`}
	var header []string
	rows := 0
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if cells[0] == "endpoint" {
			header = cells
			continue
		}
		if header == nil || !strings.HasPrefix(cells[0], "`") {
			continue
		}
		if len(cells) != len(header) {
			break // the next table
		}
		method, path, _ := strings.Cut(strings.Trim(cells[0], "`"), " ")
		url := s.client.Base + "/api/v1" + strings.NewReplacer("{id}", id, "{review}", "999").Replace(path)
		for i, who := range header[1:] {
			tok, ok := callers[who]
			require.True(t, ok, "unknown caller %q", who)
			want, err := strconv.Atoi(cells[i+1])
			require.NoError(t, err, cells[0])
			var body *strings.Reader
			if b, ok := bodies[path]; ok {
				body = strings.NewReader(b)
			} else {
				body = strings.NewReader("")
			}
			got, text := rawDo(t, method, url, tok, body, nil)
			require.Equal(t, want, got, "%s as %s: %s", cells[0], who, text)
		}
		rows++
	}
	require.Equal(t, 17, rows, "every endpoint has a row")

	// What /active shows depends on the role.
	_, mine := rawDo(t, http.MethodGet, s.client.Base+"/api/v1/datasets/active", "bobby-token-1", strings.NewReader(""), nil)
	require.Contains(t, mine, `"count":0`)
	// So does /recent: a submitter sees only their own executions.
	_, mine = rawDo(t, http.MethodGet, s.client.Base+"/api/v1/datasets/recent", "bobby-token-1", strings.NewReader(""), nil)
	require.Contains(t, mine, `"count":0`)
	_, all := rawDo(t, http.MethodGet, s.client.Base+"/api/v1/datasets/recent", "audit-token-1", strings.NewReader(""), nil)
	require.Contains(t, all, id)
}
