package auditlog

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// auditPath is RFC 9162's PATH(m, D[n]), computed directly from the leaves.
func auditPath(m uint64, leaves []Hash) []Hash {
	n := uint64(len(leaves))
	if n <= 1 {
		return nil
	}
	k := uint64(1)
	for k*2 < n {
		k *= 2
	}
	if m < k {
		return append(auditPath(m, leaves[:k]), MerkleRoot(leaves[k:]))
	}
	return append(auditPath(m-k, leaves[k:]), MerkleRoot(leaves[:k]))
}

func TestVerifyEventInclusionChecksEntryPathAndCheckpoint(t *testing.T) {
	signer := newTestSigner(t, "audit.test/log")
	l := newTestLog(t, 11)
	const size = 9
	leaves := l.leaves(size)
	root := MerkleRoot(leaves)
	note := signer.note(t, signer.key.Name+"/"+l.tenant, size, root)
	entry := func(seq int) StoredEntry {
		e := l.entries[seq]
		salt := base64.StdEncoding.EncodeToString(e.salt)
		return StoredEntry{ID: e.id, TenantID: l.tenant, Seq: e.seq, ReceivedAt: e.receivedAt, Event: json.RawMessage(e.content),
			Salt: &salt, ContentDigest: e.digest, LeafHash: e.leaf, ChainHash: e.chain}
	}
	var tamperPath bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/checkpoints/latest":
			_ = json.NewEncoder(w).Encode(SignedNote{TreeSize: size, Root: root, Note: note})
		case strings.HasSuffix(r.URL.Path, "/proof"):
			if r.URL.Query().Get("tree_size") != "9" {
				http.Error(w, `{"error":{"code":"invalid_request","message":"tree_size"}}`, 400)
				return
			}
			id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/events/"), "/proof")
			for _, e := range l.entries[:size] {
				if e.id == id {
					path := auditPath(e.seq, leaves)
					if tamperPath {
						path[0] = EmptyRoot
					}
					_ = json.NewEncoder(w).Encode(InclusionProof{EventID: id, LeafIndex: e.seq, TreeSize: size, LeafHash: e.leaf, Root: root, AuditPath: path})
					return
				}
			}
			http.Error(w, `{"error":{"code":"not_found","message":"no such event"}}`, 404)
		default:
			http.NotFound(w, r)
		}
	})
	c := newTestClient(t, h)
	ctx := context.Background()
	for seq := range size {
		cp, err := c.VerifyEventInclusion(ctx, entry(seq), signer.key)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		if cp.Size != size || cp.Root != root {
			t.Fatalf("checkpoint %d %s", cp.Size, cp.Root)
		}
	}
	if _, err := c.VerifyEventInclusion(ctx, entry(9), signer.key); !errors.Is(err, ErrNotCovered) {
		t.Errorf("an entry past the checkpoint must be ErrNotCovered, got %v", err)
	}
	changed := entry(3)
	changed.Event = json.RawMessage(strings.Replace(string(changed.Event), "u-3", "u-4", 1))
	if _, err := c.VerifyEventInclusion(ctx, changed, signer.key); err == nil || !strings.Contains(err.Error(), "content digest") {
		t.Errorf("a changed event must fail on its digest, got %v", err)
	}
	tamperPath = true
	if _, err := c.VerifyEventInclusion(ctx, entry(4), signer.key); !errors.Is(err, ErrProofInvalid) {
		t.Errorf("a tampered audit path must be rejected, got %v", err)
	}
	other := newTestSigner(t, "audit.test/log")
	var ce *CheckpointError
	if _, err := c.VerifyEventInclusion(ctx, entry(1), other.key); !errors.As(err, &ce) {
		t.Errorf("a checkpoint by an untrusted key must be rejected, got %v", err)
	}
}

func TestGetEventRefusesAnEntryWhoseTextHasADuplicateMember(t *testing.T) {
	l := newTestLog(t, 2)
	e := l.entries[1]
	salt := base64.StdEncoding.EncodeToString(e.salt)
	genuine, err := json.Marshal(StoredEntry{ID: e.id, TenantID: l.tenant, Seq: e.seq, ReceivedAt: e.receivedAt,
		Event: json.RawMessage(e.content), Salt: &salt, ContentDigest: e.digest, LeafHash: e.leaf, ChainHash: e.chain})
	if err != nil {
		t.Fatal(err)
	}
	// A forged "action" before the genuine one: encoding/json (last wins) would verify this
	// text, while a reader keeping the first member shows the forged action.
	forged := strings.Replace(string(genuine), `"event":{"action":"document.delete",`, `"event":{"action":"user.login","action":"document.delete",`, 1)
	if forged == string(genuine) {
		t.Fatalf("no action to forge in %s", genuine)
	}
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(forged))
	}))
	_, err = c.GetEvent(context.Background(), e.id)
	var se *StrictJSONError
	if !errors.As(err, &se) || se.Kind != StrictDuplicateMember || se.Path != "event.action" {
		t.Fatalf("want duplicate_member at event.action, got %v", err)
	}

	// An entry decoded leniently elsewhere still does not verify: its event is checked too.
	var lenient StoredEntry
	if err := json.Unmarshal([]byte(forged), &lenient); err != nil {
		t.Fatal(err)
	}
	if err := VerifyEntry(lenient); !errors.As(err, &se) || se.Kind != StrictDuplicateMember {
		t.Fatalf("VerifyEntry must refuse the event's duplicate member, got %v", err)
	}
}
