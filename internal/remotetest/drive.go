package remotetest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DriveFile is one file of the fake Drive.
type DriveFile struct {
	Name     string
	MimeType string
	Parent   string
	Data     []byte
	// Denied answers 403 insufficientFilePermissions for this file.
	Denied bool
}

// Drive serves the Google Drive v3 endpoints the Drive source calls:
// files.get (metadata and alt=media with byte ranges), files.list (paged,
// "'<folder>' in parents"), files.export (text/csv), and the OAuth token
// exchange of a service account.
type Drive struct {
	URL string // the API base, for DriveEndpoint (…/drive/v3/)

	mu    sync.Mutex
	files map[string]DriveFile
	// PageSize is the most files a list page holds.
	PageSize int
	// RateLimited is how many of the next API calls answer 403
	// userRateLimitExceeded.
	RateLimited int
	tokens      map[string]bool
	Requests    int
}

// StartDrive runs a fake Drive; TokenURL is where service accounts get tokens.
func StartDrive(t testing.TB) (*Drive, string) {
	d := &Drive{files: map[string]DriveFile{}, PageSize: 2, tokens: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(srv.Close)
	d.URL = srv.URL + "/drive/v3/"
	return d, srv.URL + "/token"
}

// Put stores a file under an id.
func (d *Drive) Put(id string, f DriveFile) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.files[id] = f
}

func driveError(w http.ResponseWriter, code int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": reason,
		"errors": []map[string]string{{"reason": reason, "message": reason, "domain": "global"}}}})
}

func (d *Drive) serve(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.Requests++
	if r.URL.Path == "/token" {
		tok := fmt.Sprintf("tok-%d", len(d.tokens)+1)
		d.tokens[tok] = true
		d.mu.Unlock()
		_ = r.ParseForm()
		if r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.Form.Get("assertion") == "" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
		return
	}
	if !d.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")] {
		d.mu.Unlock()
		driveError(w, http.StatusUnauthorized, "authError")
		return
	}
	if d.RateLimited > 0 {
		d.RateLimited--
		d.mu.Unlock()
		driveError(w, http.StatusForbidden, "userRateLimitExceeded")
		return
	}
	files := d.files
	pageSize := d.PageSize
	d.mu.Unlock()

	p := strings.TrimPrefix(r.URL.Path, "/drive/v3/")
	switch {
	case p == "files":
		d.list(w, r, files, pageSize)
	case strings.HasPrefix(p, "files/"):
		rest := strings.TrimPrefix(p, "files/")
		id, export := strings.CutSuffix(rest, "/export")
		f, ok := files[id]
		switch {
		case !ok:
			driveError(w, http.StatusNotFound, "notFound")
		case f.Denied:
			driveError(w, http.StatusForbidden, "insufficientFilePermissions")
		case export:
			if f.MimeType != "application/vnd.google-apps.spreadsheet" || r.URL.Query().Get("mimeType") != "text/csv" {
				driveError(w, http.StatusBadRequest, "badRequest")
				return
			}
			w.Header().Set("Content-Type", "text/csv")
			_, _ = w.Write(f.Data)
		case r.URL.Query().Get("alt") == "media":
			if strings.HasPrefix(f.MimeType, "application/vnd.google-apps.") {
				driveError(w, http.StatusForbidden, "fileNotDownloadable")
				return
			}
			http.ServeContent(w, r, f.Name, time.Time{}, bytes.NewReader(f.Data))
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(fileJSON(id, f))
		}
	default:
		driveError(w, http.StatusNotFound, "notFound")
	}
}

func fileJSON(id string, f DriveFile) map[string]any {
	m := map[string]any{"id": id, "name": f.Name, "mimeType": f.MimeType}
	if !strings.HasPrefix(f.MimeType, "application/vnd.google-apps.") {
		m["size"] = strconv.Itoa(len(f.Data))
	}
	return m
}

func (d *Drive) list(w http.ResponseWriter, r *http.Request, files map[string]DriveFile, pageSize int) {
	q := r.URL.Query().Get("q")
	i, j := strings.Index(q, "'"), strings.Index(q, "' in parents")
	if i < 0 || j <= i {
		driveError(w, http.StatusBadRequest, "invalidQuery")
		return
	}
	parent := q[i+1 : j]
	var ids []string
	for id, f := range files {
		if f.Parent == parent {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	start, _ := strconv.Atoi(r.URL.Query().Get("pageToken"))
	end := min(start+pageSize, len(ids))
	var page []map[string]any
	for _, id := range ids[min(start, len(ids)):end] {
		page = append(page, fileJSON(id, files[id]))
	}
	out := map[string]any{"files": page}
	if end < len(ids) {
		out["nextPageToken"] = strconv.Itoa(end)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// ServiceAccountFile writes a service-account key file (a fresh RSA key)
// whose token_uri is the fake's, and returns its path.
func ServiceAccountFile(t testing.TB, dir, tokenURL string) string {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	b, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "dspipe-test", "private_key_id": "k1",
		"private_key": string(pemKey), "client_email": "reader@dspipe-test.iam.gserviceaccount.com",
		"client_id": "1", "token_uri": tokenURL,
	})
	p := filepath.Join(dir, "service-account.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
