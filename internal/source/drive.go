package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"google.golang.org/api/drive/v3"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
)

// Google MIME types the Drive source understands.
const (
	mimeFolder = "application/vnd.google-apps.folder"
	mimeSheet  = "application/vnd.google-apps.spreadsheet"
	mimeGApps  = "application/vnd.google-apps."
)

// Drive reads one file (config.file_id) or every file of a folder
// (config.folder_id, paged) with a service account; Google Sheets are
// exported as CSV.
type Drive struct {
	FileID   string
	FolderID string
	svc      *drive.Service
}

// NewDrive builds a Drive source. The service-account JSON comes from
// config.service_account_path (confined to the local roots) or
// GOOGLE_SERVICE_ACCOUNT_PATH.
func NewDrive(ctx context.Context, cfg map[string]string, env Env) (*Drive, error) {
	d := &Drive{FileID: cfg["file_id"], FolderID: cfg["folder_id"]}
	if d.FileID == "" && d.FolderID == "" {
		d.FolderID = env.DriveFolderID
	}
	if d.FileID == "" && d.FolderID == "" {
		return nil, fmt.Errorf("%w: a google_drive source needs config.file_id or config.folder_id (or GOOGLE_DRIVE_FOLDER_ID on the server)", ErrConfig)
	}
	if d.FileID != "" && d.FolderID != "" {
		return nil, fmt.Errorf("%w: give config.file_id or config.folder_id, not both", ErrConfig)
	}
	sa := cfg["service_account_path"]
	switch {
	case sa == "":
		sa = env.ServiceAccountPath
	case sa != env.ServiceAccountPath:
		files, err := LocalFiles(sa, env.LocalRoots)
		if err != nil {
			return nil, fmt.Errorf("%w: config.service_account_path: %w", ErrConfig, err)
		}
		sa = files[0]
	}
	if sa == "" {
		return nil, fmt.Errorf("%w: a google_drive source needs config.service_account_path (or GOOGLE_SERVICE_ACCOUNT_PATH on the server)", ErrConfig)
	}
	b, err := os.ReadFile(filepath.Clean(sa))
	if err != nil {
		return nil, fmt.Errorf("%w: cannot read the service account file", ErrConfig)
	}
	opts := []option.ClientOption{
		option.WithAuthCredentialsJSON(option.ServiceAccount, b),
		option.WithScopes(drive.DriveReadonlyScope),
	}
	if env.DriveEndpoint != "" {
		opts = append(opts, option.WithEndpoint(env.DriveEndpoint))
	}
	svc, err := drive.NewService(ctx, opts...)
	if err != nil {
		// The library's message may quote the file; say only what is wrong.
		return nil, fmt.Errorf("%w: the service account file is not a valid service-account JSON key", ErrConfig)
	}
	d.svc = svc
	return d, nil
}

const driveFields = "id,name,mimeType,size"

func (d *Drive) object(f *drive.File) (Object, bool) {
	o := Object{Name: f.Name, URI: "gdrive://" + f.Id, Size: f.Size, Version: f.Id}
	switch {
	case f.MimeType == mimeSheet:
		o.Format, o.Size = FormatCSV, -1
	case f.MimeType == mimeFolder, strings.HasPrefix(f.MimeType, mimeGApps):
		return o, false // sub-folders and Docs/Slides are not datasets
	}
	return o, true
}

// List gets the file, or pages through the folder's files in name order.
func (d *Drive) List(ctx context.Context) ([]Object, error) {
	if d.FileID != "" {
		f, err := d.svc.Files.Get(d.FileID).Fields(driveFields).SupportsAllDrives(true).Context(ctx).Do()
		if err != nil {
			return nil, driveErr(err, "drive file "+d.FileID)
		}
		o, ok := d.object(f)
		if !ok {
			return nil, fmt.Errorf("%w: drive file %s is a %s, not a data file", ErrConfig, d.FileID, f.MimeType)
		}
		return []Object{o}, nil
	}
	if _, err := d.svc.Files.Get(d.FolderID).Fields("id,mimeType").SupportsAllDrives(true).Context(ctx).Do(); err != nil {
		return nil, driveErr(err, "drive folder "+d.FolderID)
	}
	var out []Object
	q := fmt.Sprintf("'%s' in parents and trashed = false", strings.ReplaceAll(d.FolderID, "'", `\'`))
	call := d.svc.Files.List().Q(q).Fields("nextPageToken", "files("+driveFields+")").PageSize(1000).
		SupportsAllDrives(true).IncludeItemsFromAllDrives(true)
	err := call.Pages(ctx, func(l *drive.FileList) error {
		for _, f := range l.Files {
			if o, ok := d.object(f); ok {
				out = append(out, o)
			}
		}
		return nil
	})
	if err != nil {
		return nil, driveErr(err, "drive folder "+d.FolderID)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: drive folder %s has no data files", ErrNotFound, d.FolderID)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].URI < out[j].URI
	})
	return out, nil
}

// Open downloads a file from off (an HTTP range); a Sheet is exported as CSV,
// which has no ranges, so a resumed export skips the bytes already read.
func (d *Drive) Open(ctx context.Context, obj Object, off, n int64) (io.ReadCloser, error) {
	id := strings.TrimPrefix(obj.URI, "gdrive://")
	var resp *http.Response
	var err error
	if obj.Format == FormatCSV && obj.Size < 0 {
		resp, err = d.svc.Files.Export(id, "text/csv").Context(ctx).Download()
		if err != nil {
			return nil, driveErr(err, "drive file "+id)
		}
		if off > 0 {
			if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
				resp.Body.Close()
				return nil, fmt.Errorf("drive: re-read export of %s: %w", id, err)
			}
		}
		if n >= 0 {
			return struct {
				io.Reader
				io.Closer
			}{io.LimitReader(resp.Body, n), resp.Body}, nil
		}
		return resp.Body, nil
	}
	call := d.svc.Files.Get(id).SupportsAllDrives(true).Context(ctx)
	if r := rangeHeader(off, n); r != "" {
		call.Header().Set("Range", r)
	}
	resp, err = call.Download()
	if err != nil {
		return nil, driveErr(err, "drive file "+id)
	}
	if off > 0 && resp.StatusCode != http.StatusPartialContent {
		resp.Body.Close()
		return nil, fmt.Errorf("drive: file %s: the server ignored the byte range", id)
	}
	return resp.Body, nil
}

// OpenAt gives Parquet ranged access (not for exported Sheets).
func (d *Drive) OpenAt(ctx context.Context, obj Object) (ReaderAtCloser, error) {
	return rangeReaderAt(ctx, d, obj), nil
}

func driveErr(err error, what string) error {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		if ge.Code == http.StatusForbidden {
			for _, e := range ge.Errors {
				if strings.Contains(e.Reason, "RateLimitExceeded") || strings.Contains(e.Reason, "rateLimitExceeded") {
					return fmt.Errorf("%s: Drive rate limit (HTTP 403 %s), will retry", what, e.Reason)
				}
			}
		}
		if ge.Code == http.StatusTooManyRequests || ge.Code >= 500 {
			return fmt.Errorf("%s: Drive answered HTTP %d", what, ge.Code)
		}
		return statusErr(what, ge.Code, ": share it with the service account")
	}
	return fmt.Errorf("drive: %s: %w", what, err)
}
