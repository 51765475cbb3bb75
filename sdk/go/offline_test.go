package auditlog

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vectorsDir is the shared test vectors, relative to this folder.
const vectorsDir = "../../test-vectors"

// loadVector decodes a vector file; a missing file fails the test, naming it.
func loadVector(t *testing.T, rel string, into any) {
	t.Helper()
	p := filepath.Join(vectorsDir, rel)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("test vector file %s is missing or unreadable: %v", p, err)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatalf("test vector file %s does not parse: %v", p, err)
	}
}

func mustHash(t *testing.T, s string) Hash {
	t.Helper()
	h, err := ParseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustHashes(t *testing.T, list []string) []Hash {
	t.Helper()
	out, err := parseHashList(list)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestThirdPartyMerkleVectorsVerify(t *testing.T) {
	var v struct {
		LeafInputs []string   `json:"leaf_inputs"`
		NodeHashes [][]string `json:"node_hashes"`
		Roots      []string   `json:"roots"`
		Inclusion  []struct {
			LeafIndex uint64   `json:"leaf_index"`
			TreeSize  uint64   `json:"tree_size"`
			Proof     []string `json:"proof"`
		} `json:"inclusion_proofs"`
		Consistency []struct {
			OldSize uint64   `json:"old_size"`
			NewSize uint64   `json:"new_size"`
			Proof   []string `json:"proof"`
		} `json:"consistency_proofs"`
	}
	loadVector(t, "third-party/rfc6962-merkle.json", &v)
	var leaves []Hash
	for _, in := range v.LeafInputs {
		b, _ := hex.DecodeString(in)
		leaves = append(leaves, LeafHash(b))
	}
	for level, row := range v.NodeHashes {
		for index, want := range row {
			start, width := index<<level, 1<<level
			if got := MerkleRoot(leaves[start : start+width]); got != mustHash(t, want) {
				t.Errorf("node (%d, %d): got %s, want %s", level, index, got, want)
			}
		}
	}
	for size, want := range v.Roots {
		if got := MerkleRoot(leaves[:size]); got != mustHash(t, want) {
			t.Errorf("root of size %d: got %s, want %s", size, got, want)
		}
	}
	for _, c := range v.Inclusion {
		root := MerkleRoot(leaves[:c.TreeSize])
		if err := VerifyInclusion(c.LeafIndex, c.TreeSize, leaves[c.LeafIndex], mustHashes(t, c.Proof), root); err != nil {
			t.Errorf("inclusion %d in %d: %v", c.LeafIndex, c.TreeSize, err)
		}
		if c.TreeSize > 1 {
			if err := VerifyInclusion(c.LeafIndex, c.TreeSize, leaves[c.LeafIndex], mustHashes(t, c.Proof), EmptyRoot); !errors.Is(err, ErrProofInvalid) {
				t.Errorf("inclusion %d in %d against a wrong root: got %v", c.LeafIndex, c.TreeSize, err)
			}
		}
	}
	for _, c := range v.Consistency {
		oldRoot, newRoot := MerkleRoot(leaves[:c.OldSize]), MerkleRoot(leaves[:c.NewSize])
		if err := VerifyConsistency(c.OldSize, c.NewSize, oldRoot, newRoot, mustHashes(t, c.Proof)); err != nil {
			t.Errorf("consistency %d -> %d: %v", c.OldSize, c.NewSize, err)
		}
		if c.OldSize != c.NewSize {
			if err := VerifyConsistency(c.OldSize, c.NewSize, newRoot, newRoot, mustHashes(t, c.Proof)); !errors.Is(err, ErrProofInvalid) {
				t.Errorf("consistency %d -> %d with a wrong old root: got %v", c.OldSize, c.NewSize, err)
			}
		}
	}
}

// A published Sigstore Rekor checkpoint and its verifier key, the same pair the Rust crate and
// the Go ECDSA note verifier of trillian-examples test with.
const rekorNote = "Rekor\n798034\nf+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0=\n\n" +
	"\u2014 rekor.sigstore.dev wNI9ajBEAiARInWIWyCdyG27CO6LPnPekyw20qO0YJfoaPaowGp/XgIgc+qEHS3+GKVClgqq20uDLet7MCoTURUCRdxwWBHHufk=\n"
const rekorVerifierKey = "rekor.sigstore.dev+c0d23d6a+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc="

func TestVerifiesPublishedRekorCheckpoint(t *testing.T) {
	key, err := ParseVerifierKey(rekorVerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	if key.VerifierKey() != rekorVerifierKey {
		t.Errorf("verifier key does not round-trip: %s", key.VerifierKey())
	}
	cp, err := VerifyCheckpoint(rekorNote, key)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Origin != "Rekor" || cp.Size != 798034 {
		t.Errorf("parsed %q %d", cp.Origin, cp.Size)
	}
	_, err = VerifyCheckpoint(strings.Replace(rekorNote, "798034", "798035", 1), key)
	assertCheckpointKind(t, err, CheckpointBadSignature)
}

// The Rust crate's golden checkpoint: the key with secret scalar 0x07..07, cross-checked there
// with Python's cryptography package.
func TestVerifiesRustGoldenCheckpoint(t *testing.T) {
	spki, _ := hex.DecodeString("3059301306072a8648ce3d020106082a8648ce3d030107034200041e18532fd4754c02f3041d9c75ceb33b83ffd81ac7ce4fe882ccb1c98bc5896ea46c311c4e2ff40dd96a3653e6e45445d32dfe486eced75c7a90c6a18881c0a3")
	key, err := NewCheckpointKey("audit.example.com/log/v1", spki)
	if err != nil {
		t.Fatal(err)
	}
	if key.KeyIDHex() != "ce97ec20" {
		t.Errorf("key id %s, want ce97ec20", key.KeyIDHex())
	}
	body := "audit.example.com/log/v1\n1042\nfkO00iomjMuosSlAEwXbHIShbj7WsZhq/YIigYfwqR4=\ntimestamp 1735689600\n"
	note := body + "\n\u2014 audit.example.com/log/v1 zpfsIDBFAiEAiN3TroxENWdIzlE4H98j5Q5zVTbenIgOTXiij1eaLjICID61folF2b+jT6f0b0vPyzJJhmlk9rNpolpGYkuGE+Y6\n"
	cp, err := VerifyCheckpoint(note, key)
	if err != nil {
		t.Fatal(err)
	}
	if ts, ok := cp.Timestamp(); !ok || ts != 1735689600 || cp.Size != 1042 {
		t.Errorf("parsed size %d timestamp %d %v", cp.Size, ts, ok)
	}
	if cp.Root != sha256.Sum256([]byte("golden root")) {
		t.Errorf("root %s", cp.Root)
	}
}

func assertCheckpointKind(t *testing.T, err error, kind CheckpointErrorKind) {
	t.Helper()
	var ce *CheckpointError
	if !errors.As(err, &ce) || ce.Kind != kind {
		t.Fatalf("want a %s checkpoint error, got %v", kind, err)
	}
}

// testSigner signs checkpoints like the service: ECDSA P-256 over the note text.
type testSigner struct {
	priv *ecdsa.PrivateKey
	key  CheckpointKey
}

func newTestSigner(t *testing.T, name string) *testSigner {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := NewCheckpointKey(name, spki)
	if err != nil {
		t.Fatal(err)
	}
	return &testSigner{priv: priv, key: key}
}

func (s *testSigner) signatureLine(t *testing.T, body string) string {
	t.Helper()
	digest := sha256.Sum256([]byte(body))
	sig, err := ecdsa.SignASN1(rand.Reader, s.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return "\u2014 " + s.key.Name + " " + base64.StdEncoding.EncodeToString(append(s.key.ID[:], sig...)) + "\n"
}

func (s *testSigner) note(t *testing.T, origin string, size uint64, root Hash) string {
	body := origin + "\n" + itoa(size) + "\n" + base64.StdEncoding.EncodeToString(root[:]) + "\ntimestamp 1735689600\n"
	return body + "\n" + s.signatureLine(t, body)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestCheckpointRulesOnSignatures(t *testing.T) {
	current, retired, witness := newTestSigner(t, "log.test"), newTestSigner(t, "log.test"), newTestSigner(t, "witness.test")
	root := sha256.Sum256([]byte("root"))
	note := current.note(t, "log.test/t1", 5, root)
	body := note[:strings.Index(note, "\n\n")+1]

	if _, err := VerifyCheckpoint(note, retired.key, current.key); err != nil {
		t.Errorf("several trusted keys, picked by key id: %v", err)
	}
	cosigned := note + witness.signatureLine(t, body)
	if cp, err := VerifyCheckpoint(cosigned, current.key); err != nil || cp.Size != 5 || cp.Root != root {
		t.Errorf("a witness cosignature must be ignored: %v", err)
	}
	_, err := VerifyCheckpoint(note, retired.key)
	assertCheckpointKind(t, err, CheckpointNoSignature)
	forged := body + "\n" + "\u2014 log.test " + base64.StdEncoding.EncodeToString(append(current.key.ID[:], 0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01)) + "\n"
	_, err = VerifyCheckpoint(forged+retired.signatureLine(t, body), current.key, retired.key)
	assertCheckpointKind(t, err, CheckpointBadSignature)
	_, err = VerifyCheckpoint(strings.Replace(note, "\u2014", "-", 1), current.key)
	assertCheckpointKind(t, err, CheckpointMalformed)
	_, err = VerifyCheckpoint(strings.TrimSuffix(note, "\n"), current.key)
	assertCheckpointKind(t, err, CheckpointMalformed)
	badBody := "log.test/t1\n05\n" + base64.StdEncoding.EncodeToString(root[:]) + "\n"
	_, err = VerifyCheckpoint(badBody+"\n"+current.signatureLine(t, badBody), current.key)
	assertCheckpointKind(t, err, CheckpointMalformed)
}

func TestContentMatchesFormatsExample(t *testing.T) {
	input := `{"metadata":{"b":1.0,"a":[true,null]},"action":"user.login","actor":{"type":"user","id":"u1"}}`
	received := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	got, err := ContentBytes([]byte(input), received)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"action":"user.login","actor":{"id":"u1","type":"user"},"metadata":{"a":[true,null],"b":1},"occurred_at":"2026-11-24T10:00:00.000000Z","outcome":"success"}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestNormalizesOccurredAtToUTCMicroseconds(t *testing.T) {
	got, err := NormalizeTime("2026-11-24T11:30:00.9999999+02:00")
	if err != nil || got != "2026-11-24T09:30:00.999999Z" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := NormalizeTime("2026-11-24T10:00:00"); err == nil {
		t.Error("a time without offset must be rejected")
	}
}

func TestRejectsEventsWithoutRequiredMembers(t *testing.T) {
	now := time.Now()
	for _, bad := range []string{`{"actor":{"id":"u"}}`, `{"action":"a"}`, `{"action":"a","actor":{}}`,
		`{"action":"a","actor":{"id":"u"},"tenant_id":"x"}`, `{"action":"a","actor":{"id":"u"},"outcome":"ok"}`, `[1]`} {
		if _, err := ContentBytes([]byte(bad), now); err == nil {
			t.Errorf("%s must be rejected", bad)
		}
	}
	if _, err := SigningBytes([]byte(`{"action":"a","actor":{"id":"u"}}`), time.Time{}); err == nil {
		t.Error("without a receive time, occurred_at is required")
	}
}

func TestSignEventFillsDefaultsAndVerifies(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	signed, err := SignEvent(Event{Action: "user.login", Actor: Actor{ID: "ada"}, OccurredAt: "2026-11-24T11:00:00.1234567+01:00"}, "k1", priv)
	if err != nil {
		t.Fatal(err)
	}
	if signed.Outcome != "success" || signed.OccurredAt != "2026-11-24T10:00:00.123456Z" || signed.Signature.Alg != "ed25519" {
		t.Errorf("got %+v", signed)
	}
	if err := VerifyEventSignature(signed, *signed.Signature, pub); err != nil {
		t.Error(err)
	}
	tampered := signed
	tampered.Action = "user.logout"
	if err := VerifyEventSignature(tampered, *signed.Signature, pub); err == nil {
		t.Error("a changed event must not verify")
	}
	now, err := SignEvent(Event{Action: "a", Actor: Actor{ID: "u"}}, "k1", priv)
	if err != nil || now.OccurredAt == "" {
		t.Errorf("occurred_at must default to now: %+v %v", now, err)
	}
	if _, err := SignEvent(Event{Action: "a", Actor: Actor{ID: "u"}}, "", priv); err == nil {
		t.Error("an empty key id must be rejected")
	}
}

func TestReceiptSignatureChecks(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	r := Receipt{TenantID: "0190f6e2-0000-7000-8000-000000000001", EventID: "0190f6e2-0000-7000-8000-0000000000aa", Seq: 41,
		LeafHash: strings.Repeat("ab", 32), ChainHash: strings.Repeat("cd", 32), ReceivedAt: "2026-11-24T10:00:00.123456Z", KeyID: ReceiptKeyID(pub)}
	msg, _ := ReceiptSigningBytes(r)
	r.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, msg))
	if err := VerifyReceipt(r, pub); err != nil {
		t.Fatal(err)
	}
	changed := r
	changed.Seq = 42
	if err := VerifyReceipt(changed, pub); !errors.Is(err, ErrReceiptInvalid) {
		t.Errorf("a changed seq must fail: %v", err)
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if err := VerifyReceipt(r, other); !errors.Is(err, ErrReceiptInvalid) {
		t.Errorf("an unknown key id must fail: %v", err)
	}
}
