package auditlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const testAPIKey = "alk_0123456789abcdef01234567_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// recorder is an httptest handler that answers from a script and records each request.
type recorder struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
	answer   func(n int, r *http.Request) (status int, header map[string]string, body string)
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.requests = append(rec.requests, r)
	rec.bodies = append(rec.bodies, string(body))
	n := len(rec.requests)
	rec.mu.Unlock()
	status, header, out := rec.answer(n, r)
	for k, v := range header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, out)
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.requests)
}

func newTestClient(t *testing.T, h http.Handler, opts ...Option) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	opts = append([]Option{WithBackoff(time.Millisecond, 5*time.Millisecond)}, opts...)
	c, err := NewClient(srv.URL, testAPIKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const appendedJSON = `{"id":"0190f6e2-0000-7000-8000-0000000000aa","seq":7,"leaf_hash":"` + zeros64 + `","chain_hash":"` + zeros64 + `","received_at":"2026-11-24T10:00:00.000000Z","receipt":{"seq":7}}`
const zeros64 = "0000000000000000000000000000000000000000000000000000000000000000"

func TestRetriesOn503HonouringRetryAfterWithTheSameIdempotencyKey(t *testing.T) {
	rec := &recorder{answer: func(n int, r *http.Request) (int, map[string]string, string) {
		if n == 1 {
			return 503, map[string]string{"Retry-After": "1"}, `{"error":{"code":"unavailable","message":"try again"}}`
		}
		return 201, nil, appendedJSON
	}}
	c := newTestClient(t, rec)
	start := time.Now()
	got, err := c.SendEvent(context.Background(), Event{Action: "user.login", Actor: Actor{ID: "ada"}})
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < time.Second {
		t.Errorf("Retry-After: 1 must delay the retry by a second, waited %s", elapsed)
	}
	if got.Seq != 7 || rec.count() != 2 {
		t.Fatalf("seq %d after %d requests", got.Seq, rec.count())
	}
	k1, k2 := rec.requests[0].Header.Get("Idempotency-Key"), rec.requests[1].Header.Get("Idempotency-Key")
	if k1 == "" || k1 != k2 {
		t.Errorf("the retry must reuse the Idempotency-Key: %q then %q", k1, k2)
	}
	if rec.bodies[0] != rec.bodies[1] {
		t.Error("the retry must send the same body")
	}
	if rec.requests[0].Header.Get("Authorization") != "Bearer "+testAPIKey {
		t.Error("the API key must be sent as a bearer token")
	}
	if _, err := c.SendEvent(context.Background(), Event{Action: "a", Actor: Actor{ID: "u"}}); err != nil {
		t.Fatal(err)
	}
	if k3 := rec.requests[2].Header.Get("Idempotency-Key"); k3 == k1 {
		t.Error("each call must get a fresh Idempotency-Key")
	}
}

func TestDoesNotRetryOn400AndReturnsTypedError(t *testing.T) {
	rec := &recorder{answer: func(int, *http.Request) (int, map[string]string, string) {
		return 400, nil, `{"error":{"code":"invalid_request","message":"events[3].actor.id: must not be empty"}}`
	}}
	c := newTestClient(t, rec)
	_, err := c.SendBatch(context.Background(), []Event{{Action: "a", Actor: Actor{ID: "u"}}})
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("want an *APIError, got %v", err)
	}
	if apiErr.Status != 400 || apiErr.Code != "invalid_request" || !strings.Contains(apiErr.Message, "events[3].actor.id") {
		t.Errorf("got %+v", apiErr)
	}
	if rec.count() != 1 {
		t.Errorf("a 400 must not be retried; %d requests", rec.count())
	}
	if strings.Contains(err.Error(), testAPIKey) {
		t.Error("the error must not contain the API key")
	}
}

func TestGatewayAnswersBecomeTypedErrors(t *testing.T) {
	rec := &recorder{answer: func(n int, r *http.Request) (int, map[string]string, string) {
		if n <= 2 {
			return 429, nil, `{"message":"Too Many Requests"}`
		}
		return 403, nil, `{"message":"Forbidden"}`
	}}
	c := newTestClient(t, rec)
	_, err := c.GetEvent(context.Background(), "0190f6e2-0000-7000-8000-0000000000aa")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 403 || apiErr.Code != "forbidden" || apiErr.Message != "Forbidden" {
		t.Fatalf("got %v", err)
	}
	if rec.count() != 3 {
		t.Errorf("two 429s are retried, then the 403 is final: %d requests", rec.count())
	}
}

func TestGivesUpAfterTheRetryLimit(t *testing.T) {
	rec := &recorder{answer: func(int, *http.Request) (int, map[string]string, string) {
		return 503, nil, `{"error":{"code":"unavailable","message":"down"}}`
	}}
	c := newTestClient(t, rec, WithRetries(2))
	_, err := c.SendEvent(context.Background(), Event{Action: "a", Actor: Actor{ID: "u"}}, WithIdempotencyKey("order-42"))
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "unavailable" {
		t.Fatalf("got %v", err)
	}
	if rec.count() != 3 {
		t.Errorf("want 1 attempt + 2 retries, got %d", rec.count())
	}
	for _, r := range rec.requests {
		if r.Header.Get("Idempotency-Key") != "order-42" {
			t.Errorf("the given Idempotency-Key must be used: %q", r.Header.Get("Idempotency-Key"))
		}
	}
	if _, err := c.SendEvent(context.Background(), Event{Action: "a", Actor: Actor{ID: "u"}}, WithIdempotencyKey("has space")); err == nil {
		t.Error("an Idempotency-Key with a space must be rejected")
	}
}

func TestRetriesNetworkErrorsWithTheSameKey(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		first := len(keys) == 1
		mu.Unlock()
		if first {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close() // the response is lost
			}
			return
		}
		w.WriteHeader(201)
		_, _ = io.WriteString(w, appendedJSON)
	})
	c := newTestClient(t, h)
	if _, err := c.SendEvent(context.Background(), Event{Action: "a", Actor: Actor{ID: "u"}}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != keys[1] {
		t.Errorf("want two attempts with one key, got %q", keys)
	}
}

func TestReplayedResultIsFlagged(t *testing.T) {
	rec := &recorder{answer: func(int, *http.Request) (int, map[string]string, string) {
		return 201, map[string]string{"Idempotent-Replayed": "true"}, appendedJSON
	}}
	c := newTestClient(t, rec)
	got, err := c.SendEvent(context.Background(), Event{Action: "a", Actor: Actor{ID: "u"}})
	if err != nil || !got.Replayed {
		t.Fatalf("want a replayed result: %+v %v", got, err)
	}
}

func TestEventsIteratesAcrossPages(t *testing.T) {
	const total = 5
	rec := &recorder{answer: func(_ int, r *http.Request) (int, map[string]string, string) {
		q := r.URL.Query()
		if q.Get("action") != "user.*" || q.Get("order") != "asc" || q.Get("limit") != "2" {
			return 400, nil, `{"error":{"code":"invalid_request","message":"filter not forwarded"}}`
		}
		start := 0
		if c := q.Get("cursor"); c != "" {
			start, _ = strconv.Atoi(strings.TrimPrefix(c, "cur-"))
		}
		var events []string
		for i := start; i < min(start+2, total); i++ {
			events = append(events, fmt.Sprintf(`{"id":"id-%d","seq":%d,"erased":false}`, i, i))
		}
		next := "null"
		if start+2 < total {
			next = fmt.Sprintf(`"cur-%d"`, start+2)
		}
		return 200, nil, `{"events":[` + strings.Join(events, ",") + `],"next_cursor":` + next + `}`
	}}
	c := newTestClient(t, rec)
	var seqs []uint64
	for e, err := range c.Events(context.Background(), Query{Filter: Filter{Action: "user.*"}, Limit: 2, Order: "asc"}) {
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, e.Seq)
	}
	if fmt.Sprint(seqs) != "[0 1 2 3 4]" {
		t.Errorf("got seqs %v", seqs)
	}
	if rec.count() != 3 {
		t.Errorf("5 events in pages of 2 take 3 requests, got %d", rec.count())
	}
	// Stopping early makes no further requests.
	for range c.Events(context.Background(), Query{Filter: Filter{Action: "user.*"}, Limit: 2, Order: "asc"}) {
		break
	}
	if rec.count() != 4 {
		t.Errorf("breaking after the first event must fetch one page only, got %d requests", rec.count()-3)
	}
}

func TestEventsYieldsTheErrorOnce(t *testing.T) {
	rec := &recorder{answer: func(int, *http.Request) (int, map[string]string, string) {
		return 403, nil, `{"error":{"code":"forbidden","message":"scope events:read required"}}`
	}}
	c := newTestClient(t, rec)
	n := 0
	for _, err := range c.Events(context.Background(), Query{}) {
		n++
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Code != "forbidden" {
			t.Errorf("got %v", err)
		}
	}
	if n != 1 {
		t.Errorf("want one error, got %d items", n)
	}
}

func TestWaitExportPollsUntilDoneAndDownloadsWithoutTheKey(t *testing.T) {
	var downloadAuth []string
	var mu sync.Mutex
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	polls := 0
	mux.HandleFunc("/v1/exports/exp-1", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		polls++
		n := polls
		mu.Unlock()
		status, download := "running", "null"
		if n >= 3 {
			status = "done"
			download = fmt.Sprintf(`{"data":{"url":"%[1]s/s3/data.jsonl?X-Amz-Signature=s"},"manifest":{"url":"%[1]s/s3/manifest.json?X-Amz-Signature=s"},"proof":{"url":"%[1]s/s3/proof.jsonl?X-Amz-Signature=s"}}`, srv.URL)
		}
		_, _ = fmt.Fprintf(w, `{"id":"exp-1","status":%q,"download":%s,"error":null}`, status, download)
	})
	mux.HandleFunc("/s3/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		downloadAuth = append(downloadAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "manifest.json") {
			_, _ = io.WriteString(w, `{"format":"audit-log-export/v1","data":{"key":"exports/t/e/data.jsonl"},"proof":{"key":"exports/t/e/proof.jsonl"}}`)
			return
		}
		_, _ = io.WriteString(w, "content of "+r.URL.Path)
	})
	c, err := NewClient(srv.URL, testAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	done, err := c.WaitExport(context.Background(), "exp-1", 5*time.Millisecond, 5*time.Second)
	if err != nil || done.Status != "done" || polls != 3 {
		t.Fatalf("status %v after %d polls: %v", done, polls, err)
	}
	dir := t.TempDir()
	_, err = c.DownloadExport(context.Background(), done, dir)
	// The stub manifest is incomplete, so the download stops at its parse, after fetching it
	// without the key.
	var fault *ExportFault
	if !errors.As(err, &fault) || fault.Code != FaultManifestInvalid {
		t.Fatalf("want manifest_invalid for the stub manifest, got %v", err)
	}
	for _, a := range downloadAuth {
		if a != "" {
			t.Error("presigned URLs must be fetched without the Authorization header")
		}
	}
	if len(downloadAuth) != 1 {
		t.Errorf("want one download, got %d", len(downloadAuth))
	}
}

func TestWaitExportReportsFailureAndTimeout(t *testing.T) {
	rec := &recorder{answer: func(_ int, r *http.Request) (int, map[string]string, string) {
		if strings.HasSuffix(r.URL.Path, "/bad") {
			return 200, nil, `{"id":"bad","status":"failed","error":"the filter matched too much","download":null}`
		}
		return 200, nil, `{"id":"slow","status":"queued","error":null,"download":null}`
	}}
	c := newTestClient(t, rec)
	_, err := c.WaitExport(context.Background(), "bad", time.Millisecond, time.Second)
	if !errors.Is(err, ErrExportFailed) || !strings.Contains(err.Error(), "matched too much") {
		t.Errorf("got %v", err)
	}
	_, err = c.WaitExport(context.Background(), "slow", 10*time.Millisecond, 50*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("want a deadline error, got %v", err)
	}
}

func TestNewClientRejectsBadInput(t *testing.T) {
	if _, err := NewClient("127.0.0.1:3000", testAPIKey); err == nil {
		t.Error("a base URL without scheme must be rejected")
	}
	if _, err := NewClient("http://127.0.0.1:3000", ""); err == nil {
		t.Error("an empty key must be rejected")
	}
}
