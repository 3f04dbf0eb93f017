package remotetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// HubDataset is one dataset of the fake Hub.
type HubDataset struct {
	// Gated datasets answer 401 without the token and 403 with another.
	Gated bool
	// Parquet is the Parquet conversion: config → split → file name → bytes.
	Parquet map[string]map[string]map[string][]byte
	// Files are the repository's files at revision "main": path → bytes.
	Files map[string][]byte
}

// Hub serves the HuggingFace Hub endpoints the Hub source calls:
// /api/datasets/{id}/parquet[/{config}/{split}], the Parquet files
// themselves, /api/datasets/{id}/tree/{revision}[/{dir}] (paged with a Link
// header), and /datasets/{id}/resolve/{revision}/{path}, with byte ranges.
type Hub struct {
	URL      string
	Token    string // the token that opens gated datasets
	PageSize int

	mu       sync.Mutex
	datasets map[string]HubDataset
}

// StartHub runs a fake Hub.
func StartHub(t testing.TB) *Hub {
	h := &Hub{datasets: map[string]HubDataset{}, PageSize: 2, Token: "hf_test_token"}
	srv := httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

// Put adds a dataset.
func (h *Hub) Put(id string, d HubDataset) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.datasets[id] = d
}

func (h *Hub) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	var id, rest string
	api := strings.HasPrefix(p, "/api/datasets/")
	switch {
	case api:
		p = strings.TrimPrefix(p, "/api/datasets/")
	case strings.HasPrefix(p, "/datasets/"):
		p = strings.TrimPrefix(p, "/datasets/")
	default:
		http.NotFound(w, r)
		return
	}
	parts := strings.SplitN(p, "/", 3)
	if len(parts) < 3 {
		http.NotFound(w, r)
		return
	}
	id, rest = parts[0]+"/"+parts[1], parts[2]
	h.mu.Lock()
	d, ok := h.datasets[id]
	h.mu.Unlock()
	auth := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok:
		// The Hub answers 401 for a missing repository when unauthenticated,
		// 404 otherwise.
		code := http.StatusNotFound
		if auth == "" {
			code = http.StatusUnauthorized
		}
		http.Error(w, `{"error":"Repository not found"}`, code)
		return
	case d.Gated && auth == "":
		http.Error(w, `{"error":"Access to this dataset is restricted"}`, http.StatusUnauthorized)
		return
	case d.Gated && auth != h.Token:
		http.Error(w, `{"error":"Access to this dataset is restricted"}`, http.StatusForbidden)
		return
	}
	base := "http://" + r.Host
	switch {
	case api && rest == "parquet":
		all := map[string]map[string][]string{}
		for c, splits := range d.Parquet {
			all[c] = map[string][]string{}
			for s, files := range splits {
				all[c][s] = parquetURLs(base, id, c, s, files)
			}
		}
		writeJSON(w, all)
	case api && strings.HasPrefix(rest, "parquet/"):
		seg := strings.Split(strings.TrimPrefix(rest, "parquet/"), "/")
		switch len(seg) {
		case 2:
			files, ok := d.Parquet[seg[0]][seg[1]]
			if !ok {
				http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
				return
			}
			writeJSON(w, parquetURLs(base, id, seg[0], seg[1], files))
		case 3:
			b, ok := d.Parquet[seg[0]][seg[1]][seg[2]]
			if !ok {
				http.NotFound(w, r)
				return
			}
			http.ServeContent(w, r, seg[2], time.Time{}, bytes.NewReader(b))
		default:
			http.NotFound(w, r)
		}
	case api && strings.HasPrefix(rest, "tree/"):
		h.tree(w, r, base, id, d, strings.TrimPrefix(rest, "tree/"))
	case !api && strings.HasPrefix(rest, "resolve/main/"):
		b, ok := d.Files[strings.TrimPrefix(rest, "resolve/main/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, rest, time.Time{}, bytes.NewReader(b))
	default:
		http.NotFound(w, r)
	}
}

func parquetURLs(base, id, config, split string, files map[string][]byte) []string {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		out = append(out, fmt.Sprintf("%s/api/datasets/%s/parquet/%s/%s/%s", base, id, config, split, n))
	}
	return out
}

func (h *Hub) tree(w http.ResponseWriter, r *http.Request, base, id string, d HubDataset, rest string) {
	rev, dir, _ := strings.Cut(rest, "/")
	if rev != "main" {
		http.Error(w, `{"error":"Revision not found"}`, http.StatusNotFound)
		return
	}
	var paths []string
	for p := range d.Files {
		if dir == "" || strings.HasPrefix(p, dir+"/") {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	start, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	end := min(start+h.PageSize, len(paths))
	var page []map[string]any
	for _, p := range paths[min(start, len(paths)):end] {
		page = append(page, map[string]any{"type": "file", "path": p, "size": len(d.Files[p]), "oid": "x"})
	}
	if page == nil {
		page = []map[string]any{}
	}
	if end < len(paths) {
		q := r.URL.Query()
		q.Set("cursor", strconv.Itoa(end))
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?%s>; rel="next"`, base, r.URL.Path, q.Encode()))
	}
	writeJSON(w, page)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
