package auditlog

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to the audit log HTTP API. It is safe for concurrent use. Build it with
// [NewClient].
type Client struct {
	baseURL    *url.URL
	apiKey     string
	http       *http.Client
	maxRetries int
	minBackoff time.Duration
	maxBackoff time.Duration
	userAgent  string
}

// Option configures a [Client].
type Option func(*Client)

// WithHTTPClient sets the http.Client requests go through (default: one with a 30 s timeout).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithRetries sets how many times a request is retried after a network error, a 429 or a 503
// (default 4, so at most 5 attempts). 0 disables retries.
func WithRetries(n int) Option { return func(c *Client) { c.maxRetries = max(n, 0) } }

// WithBackoff sets the exponential backoff between retries: the first wait is up to min, each
// further one doubles, capped at max, with full jitter (defaults 200 ms and 10 s). A
// Retry-After header overrides the computed wait.
func WithBackoff(min, max time.Duration) Option {
	return func(c *Client) { c.minBackoff, c.maxBackoff = min, max }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// NewClient returns a client of the service at baseURL (e.g. http://127.0.0.1:3000) that
// authenticates with apiKey (`alk_<24 hex>_<64 hex>`). The key is sent only in the
// Authorization header of requests to baseURL, never to presigned download URLs, and never
// appears in errors.
func NewClient(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("audit log client: base URL %q is not an http(s) URL", truncate(baseURL))
	}
	if apiKey == "" {
		return nil, errors.New("audit log client: the API key is empty")
	}
	c := &Client{
		baseURL:    u,
		apiKey:     apiKey,
		http:       &http.Client{Timeout: 30 * time.Second},
		maxRetries: 4,
		minBackoff: 200 * time.Millisecond,
		maxBackoff: 10 * time.Second,
		userAgent:  "audit-log-go/1",
	}
	for _, opt := range opts {
		opt(c)
	}
	return c, nil
}

// APIError is a response of the service (or of API Gateway in front of it) with a non-2xx
// status. Use errors.As to read it.
type APIError struct {
	Status int
	// Code is the service's error code (invalid_request, not_found, idempotency_conflict,
	// unavailable, ...). For API Gateway's own answers, which carry no code, it is
	// "unauthorized" (401), "forbidden" (403) or "throttled" (429).
	Code    string
	Message string
	// RetryAfter is the wait the Retry-After header asked for, if any.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("audit log API: %d %s: %s", e.Status, e.Code, e.Message)
}

// Temporary reports whether retrying the same request later may succeed (429 or 503).
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable
}

// request is one logical API call; its attempts share the body and the Idempotency-Key.
type request struct {
	method         string
	path           string
	query          url.Values
	body           any
	idempotencyKey string
}

func (r request) repeatable() bool {
	return r.method == http.MethodGet || r.method == http.MethodPatch || r.idempotencyKey != ""
}

// response is a successful answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do runs a request with retries on network errors, 429 and 503, and decodes a 2xx JSON body
// into out (when not nil).
func (c *Client) do(ctx context.Context, req request, out any) (*response, error) {
	var payload []byte
	if req.body != nil {
		var err error
		if payload, err = json.Marshal(req.body); err != nil {
			return nil, fmt.Errorf("audit log client: encoding the request: %w", err)
		}
	}
	target := *c.baseURL
	target.Path = c.baseURL.Path + req.path
	target.RawQuery = req.query.Encode()

	for attempt := 0; ; attempt++ {
		resp, err := c.attempt(ctx, req, target.String(), payload)
		if err == nil {
			if out != nil {
				// Answers are read strictly: entries, proofs, checkpoints and receipts in them are
				// verified, and a duplicate member or inexact number would let the verified value
				// differ from the one the service hashed. The error wraps a *StrictJSONError.
				if err := CheckStrictJSON(resp.body); err != nil {
					return nil, fmt.Errorf("audit log API: %s %s: the response is refused: %w", req.method, req.path, err)
				}
				if err := json.Unmarshal(resp.body, out); err != nil {
					return nil, fmt.Errorf("audit log API: %s %s: decoding the response: %w", req.method, req.path, err)
				}
			}
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// A network error may hide a request that took effect, so only calls that are safe to
		// repeat (reads, settings, or a POST with an Idempotency-Key) are retried after one.
		var apiErr *APIError
		isAPIError := errors.As(err, &apiErr)
		retryable := (isAPIError && apiErr.Temporary()) || (!isAPIError && req.repeatable())
		if !retryable || attempt >= c.maxRetries {
			return nil, err
		}
		wait := c.backoff(attempt)
		if apiErr != nil && apiErr.RetryAfter > 0 {
			wait = apiErr.RetryAfter
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
}

func (c *Client) attempt(ctx context.Context, req request, target string, payload []byte) (*response, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	hreq, err := http.NewRequestWithContext(ctx, req.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("audit log client: %w", err)
	}
	hreq.Header.Set("Authorization", "Bearer "+c.apiKey)
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", c.userAgent)
	if payload != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if req.idempotencyKey != "" {
		hreq.Header.Set("Idempotency-Key", req.idempotencyKey)
	}
	hresp, err := c.http.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("audit log API: %s %s: %w", req.method, req.path, err)
	}
	defer hresp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(hresp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("audit log API: %s %s: reading the response: %w", req.method, req.path, err)
	}
	if hresp.StatusCode < 200 || hresp.StatusCode > 299 {
		return nil, apiError(hresp, raw)
	}
	return &response{status: hresp.StatusCode, header: hresp.Header, body: raw}, nil
}

func apiError(resp *http.Response, raw []byte) *APIError {
	e := &APIError{Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
	var service struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &service) == nil && service.Error != nil {
		e.Code, e.Message = service.Error.Code, service.Error.Message
		return e
	}
	e.Message = service.Message
	if e.Message == "" {
		e.Message = strings.TrimSpace(truncate(string(raw)))
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		e.Code = "unauthorized"
	case http.StatusForbidden:
		e.Code = "forbidden"
	case http.StatusTooManyRequests:
		e.Code = "throttled"
	default:
		e.Code = strings.ReplaceAll(strings.ToLower(http.StatusText(resp.StatusCode)), " ", "_")
	}
	return e
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// backoff is the wait before retry number attempt+1: full jitter over an exponential ceiling.
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.minBackoff << min(attempt, 30)
	if ceiling <= 0 || ceiling > c.maxBackoff {
		ceiling = c.maxBackoff
	}
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(mrand.Int64N(int64(ceiling)) + 1)
}

// NewIdempotencyKey returns a fresh random Idempotency-Key (32 hex digits).
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
