package source

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
)

// HF reads a HuggingFace Hub dataset: by default its Parquet conversion for
// config.config / config.split, or with config.path (a file or glob) the
// repository's own JSONL, CSV or Parquet files at config.revision.
type HF struct {
	Dataset  string
	Config   string
	Split    string
	Revision string
	Path     string
	endpoint *url.URL
	token    string
	client   *http.Client
}

var (
	hfDatasetID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)?$`)
	hfName      = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// NewHF builds a Hub source; HF_ENDPOINT and HF_TOKEN come from the server.
func NewHF(cfg map[string]string, env Env) (*HF, error) {
	h := &HF{Dataset: cfg["dataset"], Config: cfg["config"], Split: cfg["split"], Revision: firstOf(cfg["revision"], "main"), Path: cfg["path"], token: env.HFToken}
	if !hfDatasetID.MatchString(h.Dataset) || strings.Contains(h.Dataset, "..") {
		return nil, fmt.Errorf("%w: a huggingface source needs config.dataset as owner/name", ErrConfig)
	}
	for k, v := range map[string]string{"config": h.Config, "split": h.Split} {
		if v != "" && !hfName.MatchString(v) {
			return nil, fmt.Errorf("%w: config.%s may hold letters, digits, '_', '.' and '-' only", ErrConfig, k)
		}
	}
	if strings.Contains(h.Revision, "..") || strings.ContainsAny(h.Revision, "?#") || strings.Contains(h.Path, "..") || strings.HasPrefix(h.Path, "/") {
		return nil, fmt.Errorf("%w: config.revision and config.path may not contain '..', '?', '#' or start with '/'", ErrConfig)
	}
	ep, err := url.Parse(firstOf(env.HFEndpoint, "https://huggingface.co"))
	if err != nil || ep.Host == "" {
		return nil, fmt.Errorf("%w: HF_ENDPOINT is not a URL", ErrConfig)
	}
	h.endpoint = ep
	h.client = env.HTTP
	if h.client == nil {
		h.client = &http.Client{Timeout: 0}
	}
	return h, nil
}

func (h *HF) url(p string, q url.Values) string {
	u := *h.endpoint
	u.Path = strings.TrimSuffix(u.Path, "/") + p
	u.RawQuery = q.Encode()
	return u.String()
}

func (h *HF) get(ctx context.Context, method, u, rng string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("huggingface: %s: %w", h.Dataset, err)
	}
	if resp.StatusCode >= 300 {
		resp.Body.Close()
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = ": the dataset is gated or private; accept its terms on the Hub and set HF_TOKEN to a token with access"
			if h.token != "" {
				hint = ": the dataset is gated or private and HF_TOKEN has no access to it"
			}
		}
		return nil, statusErr("huggingface dataset "+h.Dataset, resp.StatusCode, hint)
	}
	return resp, nil
}

func (h *HF) getJSON(ctx context.Context, u string, v any) (http.Header, error) {
	resp, err := h.get(ctx, http.MethodGet, u, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 32<<20)).Decode(v); err != nil {
		return nil, fmt.Errorf("huggingface: %s: unexpected answer from the Hub API: %w", h.Dataset, err)
	}
	return resp.Header, nil
}

// List resolves the Parquet conversion's files, or the repository files the
// path names.
func (h *HF) List(ctx context.Context) ([]Object, error) {
	var objs []Object
	var err error
	if h.Path != "" {
		objs, err = h.listRepo(ctx)
	} else {
		objs, err = h.listParquet(ctx)
	}
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%w: huggingface dataset %s has no files for this config, split or path", ErrNotFound, h.Dataset)
	}
	return objs, nil
}

func (h *HF) listParquet(ctx context.Context) ([]Object, error) {
	config, split := h.Config, h.Split
	if config == "" || split == "" {
		var all map[string]map[string][]string
		if _, err := h.getJSON(ctx, h.url("/api/datasets/"+h.Dataset+"/parquet", nil), &all); err != nil {
			return nil, err
		}
		if config == "" {
			config = pick(keys(all), "default")
		}
		if config == "" || all[config] == nil {
			return nil, fmt.Errorf("%w: huggingface dataset %s has configs %s: set config.config", ErrConfig, h.Dataset, strings.Join(keys(all), ", "))
		}
		if split == "" {
			split = pick(keys(all[config]), "train")
		}
		if split == "" {
			return nil, fmt.Errorf("%w: huggingface dataset %s has splits %s: set config.split", ErrConfig, h.Dataset, strings.Join(keys(all[config]), ", "))
		}
	}
	var urls []string
	if _, err := h.getJSON(ctx, h.url("/api/datasets/"+h.Dataset+"/parquet/"+config+"/"+split, nil), &urls); err != nil {
		return nil, err
	}
	var out []Object
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host != h.endpoint.Host {
			return nil, fmt.Errorf("huggingface: %s: the Hub listed a file on another host; refusing it", h.Dataset)
		}
		size, err := h.size(ctx, raw)
		if err != nil {
			return nil, err
		}
		name := path.Base(u.Path)
		out = append(out, Object{Name: name, URI: fmt.Sprintf("hf://datasets/%s/%s/%s/%s", h.Dataset, config, split, name), Size: size, Version: raw, Format: FormatParquet})
	}
	return out, nil
}

type hfEntry struct {
	Type string `json:"type"`
	Path string `json:"path"`
	Size int64  `json:"size"`
}

func (h *HF) listRepo(ctx context.Context) ([]Object, error) {
	dir := h.Path
	if strings.ContainsAny(dir, "*?[") || path.Ext(dir) != "" {
		dir = path.Dir(dir)
	}
	if dir == "." {
		dir = ""
	}
	u := h.url("/api/datasets/"+h.Dataset+"/tree/"+url.PathEscape(h.Revision)+strings.TrimSuffix("/"+dir, "/"), url.Values{"recursive": {"true"}})
	var out []Object
	for pages := 0; u != "" && pages < 1000; pages++ {
		var entries []hfEntry
		hdr, err := h.getJSON(ctx, u, &entries)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Type != "file" || !matchRepoPath(h.Path, e.Path) {
				continue
			}
			out = append(out, Object{Name: e.Path, URI: fmt.Sprintf("hf://datasets/%s@%s/%s", h.Dataset, h.Revision, e.Path), Size: e.Size,
				Version: h.url("/datasets/"+h.Dataset+"/resolve/"+url.PathEscape(h.Revision)+"/"+e.Path, nil)})
		}
		u = nextLink(hdr.Get("Link"))
		if u != "" {
			if nu, err := url.Parse(u); err != nil || nu.Host != h.endpoint.Host {
				return nil, fmt.Errorf("huggingface: %s: the Hub paged to another host; refusing it", h.Dataset)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// matchRepoPath: a glob matches by pattern, a directory matches the files
// under it, a file matches itself.
func matchRepoPath(pattern, p string) bool {
	if strings.ContainsAny(pattern, "*?[") {
		ok, _ := path.Match(pattern, p)
		return ok
	}
	return p == pattern || strings.HasPrefix(p, strings.TrimSuffix(pattern, "/")+"/")
}

func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		if strings.Contains(part, `rel="next"`) {
			if i, j := strings.Index(part, "<"), strings.Index(part, ">"); i >= 0 && j > i {
				return part[i+1 : j]
			}
		}
	}
	return ""
}

func (h *HF) size(ctx context.Context, u string) (int64, error) {
	resp, err := h.get(ctx, http.MethodHead, u, "")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.ContentLength, nil
}

// Open GETs the file from off with an HTTP range.
func (h *HF) Open(ctx context.Context, obj Object, off, n int64) (io.ReadCloser, error) {
	resp, err := h.get(ctx, http.MethodGet, obj.Version, rangeHeader(off, n))
	if err != nil {
		return nil, err
	}
	if (off > 0 || n >= 0) && resp.StatusCode != http.StatusPartialContent {
		resp.Body.Close()
		return nil, fmt.Errorf("huggingface: %s: the server ignored the byte range", h.Dataset)
	}
	return resp.Body, nil
}

// OpenAt gives Parquet ranged access.
func (h *HF) OpenAt(ctx context.Context, obj Object) (ReaderAtCloser, error) {
	return rangeReaderAt(ctx, h, obj), nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pick is want when present, the only key when there is one, else "".
func pick(ks []string, want string) string {
	for _, k := range ks {
		if k == want {
			return k
		}
	}
	if len(ks) == 1 {
		return ks[0]
	}
	return ""
}
