package auditlog

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// Appended is the acknowledgement of one appended event.
type Appended struct {
	ID         string  `json:"id"`
	Seq        uint64  `json:"seq"`
	LeafHash   Hash    `json:"leaf_hash"`
	ChainHash  Hash    `json:"chain_hash"`
	ReceivedAt string  `json:"received_at"`
	Receipt    Receipt `json:"receipt"`
	// Replayed is true when the service answered a retry with the original result
	// (Idempotent-Replayed: true).
	Replayed bool `json:"-"`
}

// BatchResult is the acknowledgement of a batch, in request order.
type BatchResult struct {
	Count    int        `json:"count"`
	TreeSize uint64     `json:"tree_size"`
	Events   []Appended `json:"events"`
	Replayed bool       `json:"-"`
}

// SendOption configures one send.
type SendOption func(*request)

// WithIdempotencyKey sends the call with this Idempotency-Key (1-255 printable ASCII, no
// spaces) instead of a fresh random one. Reuse it to retry a call made earlier safely.
func WithIdempotencyKey(key string) SendOption { return func(r *request) { r.idempotencyKey = key } }

func validIdempotencyKey(k string) bool {
	if len(k) < 1 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func sendRequest(path string, body any, opts []SendOption) (request, error) {
	req := request{method: http.MethodPost, path: path, body: body, idempotencyKey: NewIdempotencyKey()}
	for _, opt := range opts {
		opt(&req)
	}
	if !validIdempotencyKey(req.idempotencyKey) {
		return req, errors.New("audit log client: the Idempotency-Key must be 1-255 printable ASCII characters without spaces")
	}
	return req, nil
}

// SendEvent appends one event (scope events:write). The call carries one Idempotency-Key,
// generated unless given with [WithIdempotencyKey], and every retry reuses it, so a retry
// after a lost response never appends twice.
func (c *Client) SendEvent(ctx context.Context, e Event, opts ...SendOption) (*Appended, error) {
	req, err := sendRequest("/v1/events", e, opts)
	if err != nil {
		return nil, err
	}
	var out Appended
	resp, err := c.do(ctx, req, &out)
	if err != nil {
		return nil, err
	}
	out.Replayed = resp.header.Get("Idempotent-Replayed") == "true"
	return &out, nil
}

// SendBatch appends up to 1000 events, all or nothing (scope events:write), with one
// Idempotency-Key for the call as [Client.SendEvent] does.
func (c *Client) SendBatch(ctx context.Context, events []Event, opts ...SendOption) (*BatchResult, error) {
	if len(events) == 0 || len(events) > 1000 {
		return nil, fmt.Errorf("audit log client: a batch holds 1 to 1000 events, not %d", len(events))
	}
	req, err := sendRequest("/v1/events/batch", map[string]any{"events": events}, opts)
	if err != nil {
		return nil, err
	}
	var out BatchResult
	resp, err := c.do(ctx, req, &out)
	if err != nil {
		return nil, err
	}
	out.Replayed = resp.header.Get("Idempotent-Replayed") == "true"
	return &out, nil
}

// Filter selects events, for queries and exports. Empty members are not sent. Action is exact
// or a prefix followed by * (user.*); From and To are RFC 3339 bounds on occurred_at
// (from inclusive, to exclusive); Q is full-text search.
type Filter struct {
	Action       string `json:"action,omitempty"`
	ActorID      string `json:"actor_id,omitempty"`
	ResourceType string `json:"resource_type,omitempty"`
	ResourceID   string `json:"resource_id,omitempty"`
	Outcome      string `json:"outcome,omitempty"`
	Severity     string `json:"severity,omitempty"`
	Source       string `json:"source,omitempty"`
	From         string `json:"from,omitempty"`
	To           string `json:"to,omitempty"`
	Q            string `json:"q,omitempty"`
}

func (f Filter) values() url.Values {
	v := url.Values{}
	for name, value := range map[string]string{
		"action": f.Action, "actor_id": f.ActorID, "resource_type": f.ResourceType, "resource_id": f.ResourceID,
		"outcome": f.Outcome, "severity": f.Severity, "source": f.Source, "from": f.From, "to": f.To, "q": f.Q,
	} {
		if value != "" {
			v.Set(name, value)
		}
	}
	return v
}

// Query is a GET /v1/events request: a filter, a page size (1-1000, default 100 on the
// service), an order ("asc" or "desc", default desc) and a cursor from a previous page.
type Query struct {
	Filter
	Limit  int
	Order  string
	Cursor string
}

// EventPage is one page of query results.
type EventPage struct {
	Events []StoredEntry `json:"events"`
	// NextCursor continues the query (same filter and order); nil on the last page.
	NextCursor *string `json:"next_cursor"`
}

// ListEvents fetches one page of events (scope events:read).
func (c *Client) ListEvents(ctx context.Context, q Query) (*EventPage, error) {
	v := q.values()
	if q.Limit != 0 {
		if q.Limit < 1 || q.Limit > 1000 {
			return nil, fmt.Errorf("audit log client: limit must be 1 to 1000, not %d", q.Limit)
		}
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Order != "" {
		if q.Order != "asc" && q.Order != "desc" {
			return nil, fmt.Errorf("audit log client: order must be asc or desc, not %q", truncate(q.Order))
		}
		v.Set("order", q.Order)
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var page EventPage
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/events", query: v}, &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// Events iterates over every event matching q across pages, following next_cursor with the
// same filter and order. An error is yielded once, as the last pair.
//
//	for entry, err := range client.Events(ctx, auditlog.Query{Filter: auditlog.Filter{Action: "user.*"}}) {
//		if err != nil { return err }
//		...
//	}
func (c *Client) Events(ctx context.Context, q Query) iter.Seq2[StoredEntry, error] {
	return func(yield func(StoredEntry, error) bool) {
		for {
			page, err := c.ListEvents(ctx, q)
			if err != nil {
				yield(StoredEntry{}, err)
				return
			}
			for _, e := range page.Events {
				if !yield(e, nil) {
					return
				}
			}
			if page.NextCursor == nil || *page.NextCursor == "" {
				return
			}
			if *page.NextCursor == q.Cursor {
				yield(StoredEntry{}, errors.New("audit log API: the service returned the same cursor again"))
				return
			}
			q.Cursor = *page.NextCursor
		}
	}
}

// GetEvent fetches one stored entry (scope events:read).
func (c *Client) GetEvent(ctx context.Context, id string) (*StoredEntry, error) {
	var e StoredEntry
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/events/" + url.PathEscape(id)}, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// InclusionProof fetches the audit path of an event; treeSize 0 asks for the service's default
// (the latest signed checkpoint covering the event, else the current tree).
func (c *Client) InclusionProof(ctx context.Context, id string, treeSize uint64) (*InclusionProof, error) {
	v := url.Values{}
	if treeSize > 0 {
		v.Set("tree_size", strconv.FormatUint(treeSize, 10))
	}
	var p InclusionProof
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/events/" + url.PathEscape(id) + "/proof", query: v}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ConsistencyProof fetches the proof that the tree of size from is a prefix of the tree of size
// to (to 0: the current size). Check it with [VerifyConsistency] against verified checkpoints.
func (c *Client) ConsistencyProof(ctx context.Context, from, to uint64) (*ConsistencyProof, error) {
	v := url.Values{"from": {strconv.FormatUint(from, 10)}}
	if to > 0 {
		v.Set("to", strconv.FormatUint(to, 10))
	}
	var p ConsistencyProof
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/proofs/consistency", query: v}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// LatestCheckpoint fetches the tenant's latest signed checkpoint, unverified; see
// [Client.VerifiedCheckpoint].
func (c *Client) LatestCheckpoint(ctx context.Context) (*SignedNote, error) {
	var n SignedNote
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/checkpoints/latest"}, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// VerifiedCheckpoint fetches the latest signed checkpoint and verifies its note with the
// trusted keys.
func (c *Client) VerifiedCheckpoint(ctx context.Context, keys ...CheckpointKey) (*VerifiedCheckpoint, error) {
	n, err := c.LatestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	return VerifyCheckpoint(n.Note, keys...)
}

// CheckpointPublicKeyInfo is GET /v1/checkpoints/public-key.
type CheckpointPublicKeyInfo struct {
	KeyName      string `json:"key_name"`
	KeyID        string `json:"key_id"`
	Algorithm    string `json:"algorithm"`
	Origin       string `json:"origin"`
	PublicKey    string `json:"public_key"`
	PublicKeyPEM string `json:"public_key_pem"`
	VerifierKey  string `json:"verifier_key"`
	Retired      []struct {
		KeyID        string `json:"key_id"`
		PublicKey    string `json:"public_key"`
		PublicKeyPEM string `json:"public_key_pem"`
		VerifierKey  string `json:"verifier_key"`
	} `json:"retired"`
}

// Keys returns the current and retired keys as trusted [CheckpointKey] values. Keys fetched from
// the service you are checking prove nothing about it: pin them, or compare them with keys
// obtained out of band.
func (info *CheckpointPublicKeyInfo) Keys() ([]CheckpointKey, error) {
	parse := func(verifierKey, publicKey string) (CheckpointKey, error) {
		if verifierKey != "" {
			return ParseVerifierKey(verifierKey)
		}
		return NewCheckpointKeyBase64(info.KeyName, publicKey)
	}
	current, err := parse(info.VerifierKey, info.PublicKey)
	if err != nil {
		return nil, err
	}
	keys := []CheckpointKey{current}
	for _, r := range info.Retired {
		k, err := parse(r.VerifierKey, r.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("retired key %s: %w", r.KeyID, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// CheckpointPublicKey fetches the checkpoint signing key, its retired predecessors and the
// tenant's origin.
func (c *Client) CheckpointPublicKey(ctx context.Context) (*CheckpointPublicKeyInfo, error) {
	var info CheckpointPublicKeyInfo
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/checkpoints/public-key"}, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// ReceiptPublicKeys fetches every receipt key ever used, current first.
func (c *Client) ReceiptPublicKeys(ctx context.Context) ([]ed25519.PublicKey, error) {
	var out struct {
		Keys []struct {
			PublicKey string `json:"public_key"`
		} `json:"keys"`
	}
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/receipts/public-key"}, &out); err != nil {
		return nil, err
	}
	keys := make([]ed25519.PublicKey, 0, len(out.Keys))
	for _, k := range out.Keys {
		pub, err := ParseReceiptKey(k.PublicKey)
		if err != nil {
			return nil, err
		}
		keys = append(keys, pub)
	}
	return keys, nil
}

// ErrNotCovered means no signed checkpoint covers the event yet; checkpoints are signed on a
// schedule, so retry later.
var ErrNotCovered = errors.New("no signed checkpoint covers the event yet")

// VerifyEventInclusion proves that a stored entry is in the log: it verifies the latest signed
// checkpoint with the trusted keys, fetches the entry's audit path to that checkpoint's size,
// and checks the entry's own hashes and the path ([VerifyEntryInclusion]). It returns the
// checkpoint, or an error wrapping [ErrNotCovered] when the checkpoint is older than the entry.
func (c *Client) VerifyEventInclusion(ctx context.Context, e StoredEntry, keys ...CheckpointKey) (*VerifiedCheckpoint, error) {
	cp, err := c.VerifiedCheckpoint(ctx, keys...)
	if err != nil {
		var api *APIError
		if errors.As(err, &api) && api.Status == http.StatusNotFound {
			return nil, fmt.Errorf("entry %d: %w (%v)", e.Seq, ErrNotCovered, err)
		}
		return nil, err
	}
	if cp.Size <= e.Seq {
		return nil, fmt.Errorf("entry %d: %w (the latest checkpoint has %d leaves)", e.Seq, ErrNotCovered, cp.Size)
	}
	proof, err := c.InclusionProof(ctx, e.ID, cp.Size)
	if err != nil {
		return nil, err
	}
	if err := VerifyEntryInclusion(e, *proof, cp); err != nil {
		return nil, err
	}
	return cp, nil
}

// Tenant is the answer of [Client.CreateTenant]. APIKey.Secret is the new admin key, shown
// only here.
type Tenant struct {
	TenantID string `json:"tenant_id"`
	Name     string `json:"name"`
	APIKey   struct {
		Secret string `json:"secret"`
		Key    struct {
			KeyID  string   `json:"key_id"`
			Scopes []string `json:"scopes"`
		} `json:"key"`
	} `json:"api_key"`
}

// CreateTenant creates a tenant and its first admin key (platform keys only).
func (c *Client) CreateTenant(ctx context.Context, name string) (*Tenant, error) {
	var t Tenant
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/tenants", body: map[string]string{"name": name}}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// SigningKey is a registered publisher key.
type SigningKey struct {
	KeyID     string  `json:"key_id"`
	Name      string  `json:"name"`
	PublicKey string  `json:"public_key"`
	CreatedAt string  `json:"created_at"`
	RevokedAt *string `json:"revoked_at"`
}

// RegisterSigningKey registers a publisher's Ed25519 public key under keyID (scope admin);
// events signed with [SignEvent] and that key id then verify on the service.
func (c *Client) RegisterSigningKey(ctx context.Context, keyID, name string, publicKey ed25519.PublicKey) (*SigningKey, error) {
	if len(publicKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("audit log client: the public key has %d bytes, not %d", len(publicKey), ed25519.PublicKeySize)
	}
	body := map[string]string{"name": name, "public_key": base64.StdEncoding.EncodeToString(publicKey)}
	if keyID != "" {
		body["key_id"] = keyID
	}
	var k SigningKey
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/signing-keys", body: body}, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// SetRequireSignatures turns the tenant's require_signatures setting on or off (scope admin).
func (c *Client) SetRequireSignatures(ctx context.Context, require bool) error {
	_, err := c.do(ctx, request{method: http.MethodPatch, path: "/v1/settings", body: map[string]bool{"require_signatures": require}}, nil)
	return err
}
