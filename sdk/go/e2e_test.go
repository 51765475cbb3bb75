package auditlog

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestEndToEndAgainstLocalRun exercises the client against a real run of the service
// (scripts/local). It needs AUDIT_LOG_URL (e.g. http://127.0.0.1:3000) and
// AUDIT_LOG_PLATFORM_KEY (a key with the platform scope) and is skipped without them.
func TestEndToEndAgainstLocalRun(t *testing.T) {
	baseURL, platformKey := os.Getenv("AUDIT_LOG_URL"), os.Getenv("AUDIT_LOG_PLATFORM_KEY")
	if baseURL == "" || platformKey == "" {
		t.Skip("end-to-end test skipped: set AUDIT_LOG_URL and AUDIT_LOG_PLATFORM_KEY to run it against a local run of the service")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	suffix := randomHex(4)

	platform, err := NewClient(baseURL, platformKey)
	if err != nil {
		t.Fatal(err)
	}
	tenant, err := platform.CreateTenant(ctx, "go-sdk-e2e-"+suffix)
	if err != nil {
		t.Fatalf("creating a tenant with the platform key: %v", err)
	}
	client, err := NewClient(baseURL, tenant.APIKey.Secret)
	if err != nil {
		t.Fatal(err)
	}

	// A publisher key, and signatures required from now on.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	keyID := "go-e2e-" + suffix
	if _, err := client.RegisterSigningKey(ctx, keyID, "Go SDK end-to-end test", pub); err != nil {
		t.Fatalf("registering the signing key: %v", err)
	}
	if err := client.SetRequireSignatures(ctx, true); err != nil {
		t.Fatalf("requiring signatures: %v", err)
	}
	receiptKeys, err := client.ReceiptPublicKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}

	sign := func(e Event) Event {
		signed, err := SignEvent(e, keyID, priv)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	one, err := client.SendEvent(ctx, sign(Event{Action: "e2e.login", Actor: Actor{ID: "ada", Type: "user"},
		Metadata: map[string]any{"attempt": 1, "via": "sso"}}))
	if err != nil {
		t.Fatalf("sending one signed event: %v", err)
	}
	if err := VerifyReceipt(one.Receipt, receiptKeys...); err != nil {
		t.Errorf("receipt of the single event: %v", err)
	}
	var batch []Event
	for i := range 5 {
		batch = append(batch, sign(Event{Action: "e2e.document.view", Actor: Actor{ID: "bob"},
			Resource: &Resource{Type: "document", ID: fmt.Sprintf("d-%d", i)}, Severity: "low"}))
	}
	res, err := client.SendBatch(ctx, batch)
	if err != nil {
		t.Fatalf("sending a signed batch: %v", err)
	}
	if res.Count != 5 || len(res.Events) != 5 {
		t.Fatalf("batch acknowledged %d events", res.Count)
	}
	for _, a := range res.Events {
		if err := VerifyReceipt(a.Receipt, receiptKeys...); err != nil {
			t.Errorf("receipt of seq %d: %v", a.Seq, err)
		}
	}
	if _, err := client.SendEvent(ctx, Event{Action: "e2e.unsigned", Actor: Actor{ID: "eve"}}); err == nil {
		t.Error("an unsigned event must be refused once signatures are required")
	}

	// Query back in pages of 2.
	var entries []StoredEntry
	for e, err := range client.Events(ctx, Query{Filter: Filter{Action: "e2e.*"}, Limit: 2, Order: "asc"}) {
		if err != nil {
			t.Fatalf("querying: %v", err)
		}
		entries = append(entries, e)
	}
	if len(entries) != 6 {
		t.Fatalf("the query found %d events, want 6", len(entries))
	}
	// The tenant's creation, its first key, the signing key registration and the settings
	// change come first in its chain.
	if entries[0].Seq != 4 {
		t.Errorf("the first event has seq %d, want 4", entries[0].Seq)
	}
	for i, e := range entries {
		if e.Seq != entries[0].Seq+uint64(i) {
			t.Errorf("entry %d has seq %d", i, e.Seq)
		}
		if err := VerifyEntry(e); err != nil {
			t.Error(err)
		}
		ev, err := e.DecodeEvent()
		if err != nil || ev.Signature == nil {
			t.Fatalf("entry %d: stored event %v without signature (%v)", e.Seq, ev, err)
		}
		if err := VerifyEventSignature(e.Event, *ev.Signature, pub); err != nil {
			t.Errorf("entry %d: %v", e.Seq, err)
		}
	}

	// Checkpoint keys: trusted on first use here; a real verifier pins them out of band.
	info, err := client.CheckpointPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := info.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if vk, err := ParseVerifierKey(info.VerifierKey); err != nil || vk.ID != keys[0].ID {
		t.Errorf("verifier key %q: %v", info.VerifierKey, err)
	}

	// Checkpoints are signed every 5 s: poll up to 30 s until one covers the last event.
	last := entries[len(entries)-1]
	deadline := time.Now().Add(30 * time.Second)
	var cp *VerifiedCheckpoint
	for {
		cp, err = client.VerifyEventInclusion(ctx, last, keys...)
		if err == nil || !errors.Is(err, ErrNotCovered) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("inclusion of seq %d against the latest signed checkpoint: %v", last.Seq, err)
	}
	if cp.Origin != info.Origin {
		t.Errorf("checkpoint origin %q, the key endpoint says %q", cp.Origin, info.Origin)
	}
	if cp.Size > 1 {
		cons, err := client.ConsistencyProof(ctx, 1, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		// The tree of size 1 is the tenant's first entry (its creation record); its root is that leaf.
		var first StoredEntry
		for e, err := range client.Events(ctx, Query{Limit: 1, Order: "asc"}) {
			if err != nil {
				t.Fatal(err)
			}
			first = e
			break
		}
		if first.Seq != 0 {
			t.Fatalf("the oldest entry has seq %d", first.Seq)
		}
		if err := VerifyConsistency(1, cp.Size, first.LeafHash, cp.Root, cons.Proof); err != nil {
			t.Errorf("consistency 1 -> %d: %v", cp.Size, err)
		}
	}

	// Exports: every event as JSONL, and the batch's events as gzip'd CSV (a filtered export
	// with a non-empty proof).
	for _, r := range []ExportRequest{
		{Format: "jsonl", Filter: Filter{}},
		{Format: "csv", Gzip: true, Filter: Filter{Action: "e2e.document.*"}},
	} {
		report, err := client.ExportAndVerify(ctx, r, t.TempDir(), 90*time.Second, keys...)
		if err != nil {
			t.Fatalf("export %s gzip=%t: %v", r.Format, r.Gzip, err)
		}
		if report.Rows == 0 || report.Checkpoint.Size < report.Rows {
			t.Errorf("export %s: %d rows under a checkpoint of %d", r.Format, report.Rows, report.Checkpoint.Size)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
