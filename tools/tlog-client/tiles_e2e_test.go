package tlogclient

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ecdsaVerifier is a signed-note verifier for ECDSA P-256 keys (signature type 0x02): key ID
// the first 4 bytes of SHA-256 of the DER SubjectPublicKeyInfo, signature ASN.1 DER over
// SHA-256 of the note text.
type ecdsaVerifier struct {
	name string
	hash uint32
	key  *ecdsa.PublicKey
}

func (v ecdsaVerifier) Name() string    { return v.name }
func (v ecdsaVerifier) KeyHash() uint32 { return v.hash }
func (v ecdsaVerifier) Verify(msg, sig []byte) bool {
	digest := sha256.Sum256(msg)
	return ecdsa.VerifyASN1(v.key, digest[:], sig)
}

// parseVerifierKey reads `<name>+<key ID, 8 hex>+base64(0x02 || DER SPKI)`.
func parseVerifierKey(vkey string) (ecdsaVerifier, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return ecdsaVerifier{}, fmt.Errorf("verifier key %q has %d parts", vkey, len(parts))
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) < 2 || raw[0] != 0x02 {
		return ecdsaVerifier{}, fmt.Errorf("verifier key %q is not an ECDSA key", vkey)
	}
	parsed, err := x509.ParsePKIXPublicKey(raw[1:])
	if err != nil {
		return ecdsaVerifier{}, err
	}
	key, ok := parsed.(*ecdsa.PublicKey)
	if !ok {
		return ecdsaVerifier{}, fmt.Errorf("verifier key %q is not ECDSA", vkey)
	}
	spki := sha256.Sum256(raw[1:])
	id, err := hex.DecodeString(parts[1])
	if err != nil || !bytes.Equal(id, spki[:4]) {
		return ecdsaVerifier{}, fmt.Errorf("verifier key %q: key ID does not match the key", vkey)
	}
	return ecdsaVerifier{name: parts[0], hash: binary.BigEndian.Uint32(spki[:4]), key: key}, nil
}

// bearer adds the tenant's key to every request of the tile fetcher.
type bearer struct{ key string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return http.DefaultTransport.RoundTrip(r)
}

type api struct {
	t    *testing.T
	base string
	key  string
}

func (a api) call(method, path string, body any, out any) int {
	a.t.Helper()
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, a.base+path, reader)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	if out != nil && resp.StatusCode < 300 {
		if s, ok := out.(*string); ok {
			*s = string(data)
		} else if err := json.Unmarshal(data, out); err != nil {
			a.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

func (a api) appendEvents(n int, tag string) {
	a.t.Helper()
	for sent := 0; sent < n; sent += 200 {
		var events []map[string]any
		for i := sent; i < min(n, sent+200); i++ {
			events = append(events, map[string]any{
				"action": "tlog.check", "actor": map[string]any{"id": "ada"},
				"metadata": map[string]any{"tag": tag, "i": i},
			})
		}
		if status := a.call("POST", "/v1/events/batch", map[string]any{"events": events}, nil); status != 201 {
			a.t.Fatalf("appending: %d", status)
		}
	}
}

// checkpointOf waits until the log's signed checkpoint covers at least `size` entries, and
// returns it verified (signature by the tenant's checkpoint key, parsed by torchwood).
func (a api) checkpointOf(ctx context.Context, verifier note.Verifier, size int64) (torchwood.Checkpoint, []byte) {
	a.t.Helper()
	for {
		var text string
		if status := a.call("GET", "/v1/log/checkpoint", nil, &text); status == 200 {
			signed, err := note.Open([]byte(text), note.VerifierList(verifier))
			if err != nil {
				a.t.Fatalf("the checkpoint note does not verify: %v\n%s", err, text)
			}
			checkpoint, err := torchwood.ParseCheckpoint(signed.Text)
			if err != nil {
				a.t.Fatalf("parsing the checkpoint: %v", err)
			}
			if checkpoint.N >= size {
				return checkpoint, []byte(text)
			}
		}
		select {
		case <-ctx.Done():
			a.t.Fatalf("no checkpoint of size >= %d in time", size)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func TestTheLogIsReadAndVerifiedByTlogTilesClients(t *testing.T) {
	baseURL, platformKey := os.Getenv("AUDIT_LOG_URL"), os.Getenv("AUDIT_LOG_PLATFORM_KEY")
	if baseURL == "" || platformKey == "" {
		t.Skip("set AUDIT_LOG_URL and AUDIT_LOG_PLATFORM_KEY to run against a local run of the service")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var tenant struct {
		TenantID string `json:"tenant_id"`
		APIKey   struct {
			Secret string `json:"secret"`
		} `json:"api_key"`
	}
	platform := api{t, baseURL, platformKey}
	if status := platform.call("POST", "/v1/tenants", map[string]any{"name": "tlog-tiles-check"}, &tenant); status != 201 {
		t.Fatalf("creating a tenant: %d", status)
	}
	log := api{t, baseURL, tenant.APIKey.Secret}
	// More than two full tiles of leaves, so proofs need level-1 tiles too.
	log.appendEvents(600, "first")

	var public struct {
		VerifierKey string `json:"verifier_key"`
		Origin      string `json:"origin"`
	}
	if status := log.call("GET", "/v1/checkpoints/public-key", nil, &public); status != 200 {
		t.Fatalf("public key: %d", status)
	}
	verifier, err := parseVerifierKey(public.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := log.checkpointOf(ctx, verifier, 601)
	if first.Origin != public.Origin {
		t.Errorf("origin %q, the API says %q", first.Origin, public.Origin)
	}
	tree := tlog.Tree{N: first.N, Hash: first.Hash}

	fetcher, err := torchwood.NewTileFetcher(baseURL+"/v1/log/",
		torchwood.WithHTTPClient(&http.Client{Transport: bearer{tenant.APIKey.Secret}, Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	client, err := torchwood.NewClient(fetcher)
	if err != nil {
		t.Fatal(err)
	}

	// Every entry, each checked by the client against the tiles and the signed root.
	var seen int64
	for seen < tree.N {
		before := seen
		for i, entry := range client.Entries(ctx, tree, seen) {
			if i != seen {
				t.Fatalf("entry %d came as %d", seen, i)
			}
			var e struct {
				TenantID string `json:"tenant_id"`
				Seq      int64  `json:"seq"`
			}
			if err := json.Unmarshal(entry, &e); err != nil {
				t.Fatalf("entry %d is not the canonical entry: %v", i, err)
			}
			if e.TenantID != tenant.TenantID || e.Seq != i {
				t.Fatalf("entry %d is %+v", i, e)
			}
			seen++
		}
		if err := client.Err(); err != nil {
			t.Fatalf("reading entries from %d: %v", before, err)
		}
		if seen == before {
			t.Fatalf("no progress reading entries at %d of %d", seen, tree.N)
		}
	}

	// An inclusion proof from tiles for one entry, checked against the root; its leaf hash is
	// the one the API gives for that event.
	entry, proof, err := client.Entry(ctx, tree, 300)
	if err != nil {
		t.Fatalf("entry 300 with its proof: %v", err)
	}
	if len(proof) == 0 {
		t.Fatal("an empty inclusion proof")
	}
	var id struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(entry, &id); err != nil {
		t.Fatal(err)
	}
	var inclusion struct {
		LeafHash string `json:"leaf_hash"`
	}
	if status := log.call("GET", "/v1/events/"+id.ID+"/proof", nil, &inclusion); status != 200 {
		t.Fatalf("the API's proof of entry 300: %d", status)
	}
	leaf := tlog.RecordHash(entry)
	if hex.EncodeToString(leaf[:]) != inclusion.LeafHash {
		t.Errorf("leaf hash %x from the bundle, %s from the API", leaf, inclusion.LeafHash)
	}

	// The log grows; the new signed tree is consistent with the first, by a proof from tiles.
	log.appendEvents(100, "second")
	second, _ := log.checkpointOf(ctx, verifier, tree.N+100)
	grown := tlog.Tree{N: second.N, Hash: second.Hash}
	consistency, err := tlog.ProveTree(grown.N, tree.N, torchwood.TileHashReaderWithContext(ctx, grown, fetcher))
	if err != nil {
		t.Fatalf("consistency proof from tiles: %v", err)
	}
	if err := tlog.CheckTree(consistency, grown.N, grown.Hash, tree.N, tree.Hash); err != nil {
		t.Fatalf("the grown tree is not consistent with the first: %v", err)
	}
	// A root the log never signed is refused by the same check.
	forged := tree.Hash
	forged[0] ^= 1
	if err := tlog.CheckTree(consistency, grown.N, grown.Hash, tree.N, forged); err == nil {
		t.Fatal("a forged earlier root passed the consistency check")
	}

	// A tile beyond the tree is not served.
	beyond := tlog.Tile{H: 8, L: 0, N: grown.N/256 + 1, W: 256}
	if _, err := fetcher.ReadTiles(ctx, []tlog.Tile{beyond}); err == nil {
		t.Fatal("a tile past the tree was served")
	}
}
