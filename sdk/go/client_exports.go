package auditlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"time"
)

// ExportRequest is the body of POST /v1/exports.
type ExportRequest struct {
	// Format is "jsonl" or "csv".
	Format string `json:"format"`
	Gzip   bool   `json:"gzip"`
	Filter Filter `json:"filter"`
}

// Export is an export job as GET /v1/exports/{id} returns it.
type Export struct {
	ID        string          `json:"id"`
	Status    string          `json:"status"` // queued, running, done or failed
	Format    string          `json:"format"`
	Gzip      bool            `json:"gzip"`
	Filter    map[string]any  `json:"filter"`
	Rows      *uint64         `json:"rows"`
	TreeSize  *uint64         `json:"tree_size"`
	CreatedAt string          `json:"created_at"`
	UpdatedAt string          `json:"updated_at"`
	Error     *string         `json:"error"`
	Download  *ExportDownload `json:"download"`
}

// ExportDownload holds the presigned URLs of a finished export.
type ExportDownload struct {
	Data     PresignedURL `json:"data"`
	Manifest PresignedURL `json:"manifest"`
	Proof    PresignedURL `json:"proof"`
}

// PresignedURL is a time-limited S3 GET URL; it needs no Authorization header.
type PresignedURL struct {
	URL       string `json:"url"`
	ExpiresAt string `json:"expires_at"`
}

// Export job states.
const (
	ExportQueued  = "queued"
	ExportRunning = "running"
	ExportDone    = "done"
	ExportFailed  = "failed"
)

// ErrExportFailed is wrapped when an export job ends in the failed state.
var ErrExportFailed = errors.New("export failed")

// CreateExport requests an export (scope exports). The job runs asynchronously; see
// [Client.WaitExport].
func (c *Client) CreateExport(ctx context.Context, r ExportRequest) (*Export, error) {
	if r.Format != "jsonl" && r.Format != "csv" {
		return nil, fmt.Errorf("audit log client: export format must be jsonl or csv, not %q", truncate(r.Format))
	}
	var e Export
	req := request{method: http.MethodPost, path: "/v1/exports", body: r}
	if _, err := c.do(ctx, req, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// GetExport fetches an export job's state.
func (c *Client) GetExport(ctx context.Context, id string) (*Export, error) {
	var e Export
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/exports/" + url.PathEscape(id)}, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// ListExports lists the tenant's export jobs.
func (c *Client) ListExports(ctx context.Context) ([]Export, error) {
	var out struct {
		Exports []Export `json:"exports"`
	}
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/exports"}, &out); err != nil {
		return nil, err
	}
	return out.Exports, nil
}

// WaitExport polls an export job every interval (default 1 s when 0) until it is done or
// failed, or until timeout passes (no limit when 0) or ctx ends. A failed job gives an error
// wrapping [ErrExportFailed] with the job's message.
func (c *Client) WaitExport(ctx context.Context, id string, interval, timeout time.Duration) (*Export, error) {
	if interval <= 0 {
		interval = time.Second
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	for {
		e, err := c.GetExport(ctx, id)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && timeout > 0 {
				return nil, fmt.Errorf("export %s: not finished within %s: %w", id, timeout, err)
			}
			return nil, err
		}
		switch e.Status {
		case ExportDone:
			if e.Download == nil {
				return nil, fmt.Errorf("export %s is done but has no download URLs", id)
			}
			return e, nil
		case ExportFailed:
			msg := "no reason given"
			if e.Error != nil {
				msg = *e.Error
			}
			return e, fmt.Errorf("export %s: %w: %s", id, ErrExportFailed, msg)
		}
		timer := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			if timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("export %s: still %s after %s: %w", id, e.Status, timeout, ctx.Err())
			}
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
}

// ExportFiles are the paths of a downloaded bundle.
type ExportFiles struct {
	Dir, Manifest, Data, Proof string
}

// DownloadExport downloads a finished export's manifest, data and proof through their presigned
// URLs (plain GETs without the API key) into dir, streaming each to disk. The data and proof
// files get the last part of their manifest keys as names, as [VerifyExportDir] expects.
func (c *Client) DownloadExport(ctx context.Context, e *Export, dir string) (*ExportFiles, error) {
	if e == nil || e.Download == nil {
		return nil, errors.New("audit log client: the export has no download URLs (is it done?)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	files := &ExportFiles{Dir: dir, Manifest: filepath.Join(dir, "manifest.json")}
	if err := c.download(ctx, e.Download.Manifest.URL, files.Manifest); err != nil {
		return nil, fmt.Errorf("export %s manifest: %w", e.ID, err)
	}
	manifestBytes, err := os.ReadFile(files.Manifest)
	if err != nil {
		return nil, err
	}
	m, err := ParseExportManifest(manifestBytes)
	if err != nil {
		return nil, err
	}
	files.Data = filepath.Join(dir, path.Base(m.Data.Key))
	files.Proof = filepath.Join(dir, path.Base(m.Proof.Key))
	if err := c.download(ctx, e.Download.Data.URL, files.Data); err != nil {
		return nil, fmt.Errorf("export %s data: %w", e.ID, err)
	}
	if err := c.download(ctx, e.Download.Proof.URL, files.Proof); err != nil {
		return nil, fmt.Errorf("export %s proof: %w", e.ID, err)
	}
	return files, nil
}

// download GETs a presigned URL into a file, retrying network errors and 429/503 like API
// calls. Errors name the URL without its query, which holds the signature.
func (c *Client) download(ctx context.Context, rawURL, dest string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return errors.New("the download URL is not an http(s) URL")
	}
	shown := u.Scheme + "://" + u.Host + u.Path
	for attempt := 0; ; attempt++ {
		err := c.downloadOnce(ctx, rawURL, dest)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var apiErr *APIError
		if (errors.As(err, &apiErr) && !apiErr.Temporary()) || attempt >= c.maxRetries {
			return fmt.Errorf("GET %s: %w", shown, err)
		}
		wait := c.backoff(attempt)
		if apiErr != nil && apiErr.RetryAfter > 0 {
			wait = apiErr.RetryAfter
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (c *Client) downloadOnce(ctx context.Context, rawURL, dest string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err // the url.Error would repeat the signed URL
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &APIError{Status: resp.StatusCode, Code: "download_failed", Message: truncate(string(body)),
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
	}
	f, err := os.Create(dest)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ExportAndVerify requests an export, waits for it (polling every second, up to timeout),
// downloads the bundle into dir and verifies it offline with the trusted keys.
func (c *Client) ExportAndVerify(ctx context.Context, r ExportRequest, dir string, timeout time.Duration, keys ...CheckpointKey) (*ExportReport, error) {
	job, err := c.CreateExport(ctx, r)
	if err != nil {
		return nil, err
	}
	done, err := c.WaitExport(ctx, job.ID, time.Second, timeout)
	if err != nil {
		return nil, err
	}
	files, err := c.DownloadExport(ctx, done, dir)
	if err != nil {
		return nil, err
	}
	return VerifyExportDir(files.Dir, keys...)
}
