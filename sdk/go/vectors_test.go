package auditlog

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// The shared vectors of test-vectors/v1 (see its README). Each file must exist and hold cases:
// a missing or empty file fails the test, naming it.

// keyBytes decodes a key or seed given as base64 (the vectors' encoding) or hex.
func keyBytes(t *testing.T, s string) []byte {
	t.Helper()
	if b, err := hex.DecodeString(s); err == nil && len(s) == 64 {
		return b
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%q is neither base64 nor hex", s)
	}
	return b
}

func requireCases(t *testing.T, file string, n int) {
	t.Helper()
	if n == 0 {
		t.Fatalf("test vector file %s has no cases", file)
	}
}

func TestVectorsStrictJSON(t *testing.T) {
	var v struct {
		Cases []struct {
			Name  string  `json:"name"`
			Input string  `json:"input"`
			Valid bool    `json:"valid"`
			Error string  `json:"error"`
			Path  *string `json:"path"`
		} `json:"cases"`
	}
	loadVector(t, "v1/strict-json.json", &v)
	requireCases(t, "v1/strict-json.json", len(v.Cases))
	for _, c := range v.Cases {
		err := CheckStrictJSON([]byte(c.Input))
		if c.Valid {
			if err != nil {
				t.Errorf("%s: a valid input must pass: %v", c.Name, err)
			}
			continue
		}
		var se *StrictJSONError
		if !errors.As(err, &se) {
			t.Errorf("%s: want %s, got %v", c.Name, c.Error, err)
			continue
		}
		// invalid_json has no path (null in the vectors); every other kind has one.
		pathOK := (c.Path == nil) == (se.Kind == StrictInvalidJSON) && (c.Path == nil || *c.Path == se.Path)
		if se.Kind != c.Error || !pathOK {
			t.Errorf("%s: got %v; want %s at %v", c.Name, se, c.Error, optionalString(c.Path))
		}
	}
}

func optionalString(p *string) any {
	if p == nil {
		return "null"
	}
	return fmt.Sprintf("%q", *p)
}

func TestVectorsCanonical(t *testing.T) {
	var v struct {
		Cases []struct {
			Name      string `json:"name"`
			Input     string `json:"input"`
			Canonical string `json:"canonical"`
		} `json:"cases"`
	}
	loadVector(t, "v1/canonical.json", &v)
	requireCases(t, "v1/canonical.json", len(v.Cases))
	for _, c := range v.Cases {
		got, err := Canonicalize([]byte(c.Input))
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if string(got) != c.Canonical {
			t.Errorf("%s:\n got  %s\n want %s", c.Name, got, c.Canonical)
		}
	}
}

func TestVectorsEvents(t *testing.T) {
	var v struct {
		Cases []struct {
			Name          string          `json:"name"`
			ReceivedAt    string          `json:"received_at"`
			Input         json.RawMessage `json:"input"`
			Content       string          `json:"content"`
			SigningBytes  string          `json:"signing_bytes"`
			Salt          string          `json:"salt"`
			ContentDigest string          `json:"content_digest"`
		} `json:"cases"`
		Publisher struct {
			Seed      string `json:"seed"`
			PublicKey string `json:"public_key"`
			KeyID     string `json:"key_id"`
			Cases     []struct {
				Name         string          `json:"name"`
				Event        json.RawMessage `json:"event"`
				SigningBytes string          `json:"signing_bytes"`
				Signature    json.RawMessage `json:"signature"`
			} `json:"cases"`
		} `json:"publisher"`
	}
	loadVector(t, "v1/events.json", &v)
	requireCases(t, "v1/events.json cases", len(v.Cases))
	requireCases(t, "v1/events.json publisher.cases", len(v.Publisher.Cases))
	for _, c := range v.Cases {
		received, err := time.Parse(time.RFC3339Nano, c.ReceivedAt)
		if err != nil {
			t.Fatalf("%s: received_at: %v", c.Name, err)
		}
		content, err := ContentBytes([]byte(c.Input), received)
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if string(content) != c.Content {
			t.Errorf("%s: content\n got  %s\n want %s", c.Name, content, c.Content)
		}
		signing, err := SigningBytes([]byte(c.Input), received)
		if err != nil || string(signing) != c.SigningBytes {
			t.Errorf("%s: signing bytes\n got  %s (%v)\n want %s", c.Name, signing, err, c.SigningBytes)
		}
		if got := ContentDigest(keyBytes(t, c.Salt), []byte(c.Content)); got.String() != c.ContentDigest {
			t.Errorf("%s: content digest %s, want %s", c.Name, got, c.ContentDigest)
		}
	}

	p := v.Publisher
	priv := ed25519.NewKeyFromSeed(keyBytes(t, p.Seed))
	pub := priv.Public().(ed25519.PublicKey)
	if base64.StdEncoding.EncodeToString(pub) != p.PublicKey && hex.EncodeToString(pub) != p.PublicKey {
		t.Errorf("publisher public key from the seed is %s, want %s", base64.StdEncoding.EncodeToString(pub), p.PublicKey)
	}
	for _, c := range p.Cases {
		var e Event
		dec := json.NewDecoder(strings.NewReader(string(c.Event)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Errorf("%s: the event does not decode into Event: %v", c.Name, err)
			continue
		}
		signed, err := SignEvent(e, p.KeyID, priv)
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		signing, err := SigningBytes(signed, time.Time{})
		if err != nil || string(signing) != c.SigningBytes {
			t.Errorf("%s: signing bytes\n got  %s (%v)\n want %s", c.Name, signing, err, c.SigningBytes)
		}
		raw, err := SigningBytes([]byte(c.Event), time.Time{})
		if err != nil || string(raw) != c.SigningBytes {
			t.Errorf("%s: signing bytes of the raw event\n got  %s (%v)\n want %s", c.Name, raw, err, c.SigningBytes)
		}
		want := signatureText(c.Signature)
		if signed.Signature.Sig != want {
			t.Errorf("%s: signature %s, want %s", c.Name, signed.Signature.Sig, want)
		}
		if signed.Signature.KeyID != p.KeyID || signed.Signature.Alg != "ed25519" {
			t.Errorf("%s: signature member %+v", c.Name, signed.Signature)
		}
		if err := VerifyEventSignature(signed, *signed.Signature, pub); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
	}
}

// signatureText reads a vector signature given as base64 text or as a signature object.
func signatureText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj EventSignature
	_ = json.Unmarshal(raw, &obj)
	return obj.Sig
}

func TestVectorsEntries(t *testing.T) {
	var v struct {
		Entries []struct {
			TenantID       string `json:"tenant_id"`
			Seq            uint64 `json:"seq"`
			ID             string `json:"id"`
			ReceivedAt     string `json:"received_at"`
			ContentDigest  string `json:"content_digest"`
			CanonicalEntry string `json:"canonical_entry"`
			LeafHash       string `json:"leaf_hash"`
		} `json:"entries"`
		Chain []struct {
			Seq       uint64 `json:"seq"`
			LeafHash  string `json:"leaf_hash"`
			ChainHash string `json:"chain_hash"`
		} `json:"chain"`
	}
	loadVector(t, "v1/entries.json", &v)
	requireCases(t, "v1/entries.json entries", len(v.Entries))
	requireCases(t, "v1/entries.json chain", len(v.Chain))
	for _, e := range v.Entries {
		f := EntryFields{TenantID: e.TenantID, Seq: e.Seq, ID: e.ID, ReceivedAt: e.ReceivedAt, ContentDigest: mustHash(t, e.ContentDigest)}
		canonical, err := f.CanonicalBytes()
		if err != nil || string(canonical) != e.CanonicalEntry {
			t.Errorf("seq %d: canonical entry\n got  %s (%v)\n want %s", e.Seq, canonical, err, e.CanonicalEntry)
		}
		if leaf, _ := f.LeafHash(); leaf.String() != e.LeafHash {
			t.Errorf("seq %d: leaf hash %s, want %s", e.Seq, leaf, e.LeafHash)
		}
	}
	prev := ZeroHash
	for i, c := range v.Chain {
		if c.Seq != uint64(i) {
			t.Fatalf("chain vector %d has seq %d", i, c.Seq)
		}
		got := ChainLink(prev, mustHash(t, c.LeafHash))
		if got.String() != c.ChainHash {
			t.Errorf("seq %d: chain hash %s, want %s", c.Seq, got, c.ChainHash)
		}
		prev = mustHash(t, c.ChainHash)
	}
}

func TestVectorsMerkle(t *testing.T) {
	var v struct {
		Leaves []string `json:"leaves"`
		Roots  []struct {
			Size uint64 `json:"size"`
			Root string `json:"root"`
		} `json:"roots"`
		Inclusion []struct {
			Index uint64   `json:"index"`
			Size  uint64   `json:"size"`
			Path  []string `json:"path"`
		} `json:"inclusion"`
		Consistency []struct {
			OldSize uint64   `json:"old_size"`
			NewSize uint64   `json:"new_size"`
			Proof   []string `json:"proof"`
		} `json:"consistency"`
		Invalid []struct {
			Kind    string   `json:"kind"`
			Index   uint64   `json:"index"`
			Size    uint64   `json:"size"`
			Path    []string `json:"path"`
			Leaf    string   `json:"leaf"`
			Root    string   `json:"root"`
			OldSize uint64   `json:"old_size"`
			NewSize uint64   `json:"new_size"`
			Proof   []string `json:"proof"`
			OldRoot string   `json:"old_root"`
			NewRoot string   `json:"new_root"`
		} `json:"invalid"`
	}
	loadVector(t, "v1/merkle.json", &v)
	for name, n := range map[string]int{"leaves": len(v.Leaves), "roots": len(v.Roots), "inclusion": len(v.Inclusion),
		"consistency": len(v.Consistency), "invalid": len(v.Invalid)} {
		requireCases(t, "v1/merkle.json "+name, n)
	}
	leaves := mustHashes(t, v.Leaves)
	for i, l := range leaves {
		if want := LeafHash([]byte("leaf " + itoa(uint64(i)))); l != want {
			t.Errorf("leaf %d is %s, want SHA-256(0x00 || \"leaf %d\") = %s", i, l, i, want)
		}
	}
	roots := map[uint64]Hash{}
	for _, r := range v.Roots {
		roots[r.Size] = mustHash(t, r.Root)
		if got := MerkleRoot(leaves[:r.Size]); got != roots[r.Size] {
			t.Errorf("root of size %d: %s, want %s", r.Size, got, r.Root)
		}
	}
	rootOf := func(size uint64) Hash {
		if r, ok := roots[size]; ok {
			return r
		}
		return MerkleRoot(leaves[:size])
	}
	for _, c := range v.Inclusion {
		if err := VerifyInclusion(c.Index, c.Size, leaves[c.Index], mustHashes(t, c.Path), rootOf(c.Size)); err != nil {
			t.Errorf("inclusion of %d in %d: %v", c.Index, c.Size, err)
		}
	}
	for _, c := range v.Consistency {
		if err := VerifyConsistency(c.OldSize, c.NewSize, rootOf(c.OldSize), rootOf(c.NewSize), mustHashes(t, c.Proof)); err != nil {
			t.Errorf("consistency %d -> %d: %v", c.OldSize, c.NewSize, err)
		}
	}
	for i, c := range v.Invalid {
		var err error
		switch c.Kind {
		case "inclusion":
			leaf := Hash{}
			if c.Leaf != "" {
				leaf = mustHash(t, c.Leaf)
			} else if c.Index < uint64(len(leaves)) {
				leaf = leaves[c.Index]
			}
			if path, perr := parseHashList(c.Path); perr != nil {
				err = fmt.Errorf("%w: %v", ErrProofInvalid, perr) // an unparsable path is a rejection too
			} else {
				err = VerifyInclusion(c.Index, c.Size, leaf, path, mustHash(t, c.Root))
			}
		case "consistency":
			if proof, perr := parseHashList(c.Proof); perr != nil {
				err = fmt.Errorf("%w: %v", ErrProofInvalid, perr)
			} else {
				err = VerifyConsistency(c.OldSize, c.NewSize, mustHash(t, c.OldRoot), mustHash(t, c.NewRoot), proof)
			}
		default:
			t.Fatalf("invalid case %d has unknown kind %q", i, c.Kind)
		}
		if !errors.Is(err, ErrProofInvalid) {
			t.Errorf("invalid case %d (%s %+v) must be rejected, got %v", i, c.Kind, c, err)
		}
	}
}

type vectorKey struct {
	KeyName     string `json:"key_name"`
	PublicKey   string `json:"public_key"`
	KeyID       string `json:"key_id"`
	VerifierKey string `json:"verifier_key"`
}

func (k vectorKey) checkpointKey(t *testing.T) CheckpointKey {
	t.Helper()
	key, err := NewCheckpointKeyBase64(k.KeyName, k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if k.KeyID != "" && key.KeyIDHex() != k.KeyID {
		t.Errorf("key id of %s: %s, want %s", k.KeyName, key.KeyIDHex(), k.KeyID)
	}
	if k.VerifierKey != "" {
		if key.VerifierKey() != k.VerifierKey {
			t.Errorf("verifier key: %s, want %s", key.VerifierKey(), k.VerifierKey)
		}
		parsed, err := ParseVerifierKey(k.VerifierKey)
		if err != nil || parsed.ID != key.ID || parsed.Name != key.Name {
			t.Errorf("parsing verifier key %s: %+v %v", k.VerifierKey, parsed, err)
		}
	}
	return key
}

func TestVectorsCheckpoints(t *testing.T) {
	var v struct {
		Key        vectorKey `json:"key"`
		RetiredKey vectorKey `json:"retired_key"`
		Cases      []struct {
			Name     string   `json:"name"`
			Note     string   `json:"note"`
			Valid    bool     `json:"valid"`
			Origin   string   `json:"origin"`
			TreeSize uint64   `json:"tree_size"`
			Root     string   `json:"root"`
			Error    string   `json:"error"`
			Keys     []string `json:"keys"`
		} `json:"cases"`
	}
	loadVector(t, "v1/checkpoints.json", &v)
	requireCases(t, "v1/checkpoints.json", len(v.Cases))
	byName := map[string]CheckpointKey{"key": v.Key.checkpointKey(t), "retired_key": v.RetiredKey.checkpointKey(t)}
	for _, c := range v.Cases {
		keys := []CheckpointKey{byName["key"]}
		if len(c.Keys) > 0 {
			keys = nil
			for _, name := range c.Keys {
				k, ok := byName[name]
				if !ok {
					t.Fatalf("%s: unknown key %q", c.Name, name)
				}
				keys = append(keys, k)
			}
		}
		cp, err := VerifyCheckpoint(c.Note, keys...)
		if c.Valid {
			if err != nil {
				t.Errorf("%s: %v", c.Name, err)
				continue
			}
			if cp.Origin != c.Origin || cp.Size != c.TreeSize || cp.Root.String() != c.Root {
				t.Errorf("%s: parsed %q %d %s, want %q %d %s", c.Name, cp.Origin, cp.Size, cp.Root, c.Origin, c.TreeSize, c.Root)
			}
			continue
		}
		var ce *CheckpointError
		if !errors.As(err, &ce) {
			t.Errorf("%s: must be rejected with %q, got %v", c.Name, c.Error, err)
			continue
		}
		if string(ce.Kind) != c.Error {
			t.Errorf("%s: rejected as %q (%v), want %q", c.Name, ce.Kind, ce, c.Error)
		}
	}
}

func TestVectorsReceipts(t *testing.T) {
	var v struct {
		PublicKey string `json:"public_key"`
		KeyID     string `json:"key_id"`
		Cases     []struct {
			Name         string  `json:"name"`
			Receipt      Receipt `json:"receipt"`
			SigningBytes string  `json:"signing_bytes"`
			Valid        bool    `json:"valid"`
		} `json:"cases"`
	}
	loadVector(t, "v1/receipts.json", &v)
	requireCases(t, "v1/receipts.json", len(v.Cases))
	pub, err := ParseReceiptKey(v.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if ReceiptKeyID(pub) != v.KeyID {
		t.Errorf("receipt key id %s, want %s", ReceiptKeyID(pub), v.KeyID)
	}
	for _, c := range v.Cases {
		if c.SigningBytes != "" {
			if got, err := ReceiptSigningBytes(c.Receipt); err != nil || string(got) != c.SigningBytes {
				t.Errorf("%s: signing bytes\n got  %s (%v)\n want %s", c.Name, got, err, c.SigningBytes)
			}
		}
		err := VerifyReceipt(c.Receipt, pub)
		if c.Valid && err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
		if !c.Valid && !errors.Is(err, ErrReceiptInvalid) {
			t.Errorf("%s: a tampered receipt must be rejected, got %v", c.Name, err)
		}
	}
}

// The export vectors come last; until they exist the test skips with the reason.
func TestVectorsExports(t *testing.T) {
	dir := filepath.Join(vectorsDir, "v1", "exports")
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		t.Skipf("export bundle vectors %s are not generated yet", dir)
	}
	var pk vectorKey
	loadVector(t, "v1/exports/public_key.json", &pk)
	key := pk.checkpointKey(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, e := range entries {
		if e.IsDir() {
			cases = append(cases, e.Name())
		}
	}
	sort.Strings(cases)
	requireCases(t, "v1/exports/", len(cases))
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			var want struct {
				Valid bool    `json:"valid"`
				Code  string  `json:"code"`
				Row   *int    `json:"row"`
				Seq   *uint64 `json:"seq"`
			}
			loadVector(t, filepath.Join("v1", "exports", name, "expected.json"), &want)
			report, err := VerifyExportDir(filepath.Join(dir, name), key)
			if want.Valid {
				if err != nil {
					t.Fatalf("a valid bundle must verify: %v", err)
				}
				if report.Rows != report.Manifest.Rows {
					t.Errorf("verified %d rows, manifest says %d", report.Rows, report.Manifest.Rows)
				}
				return
			}
			var f *ExportFault
			if !errors.As(err, &f) {
				t.Fatalf("want fault %s, got %v", want.Code, err)
			}
			wantRow := 0
			if want.Row != nil {
				wantRow = *want.Row
			}
			seqOK := (want.Seq == nil && f.Seq == nil) || (want.Seq != nil && f.Seq != nil && *want.Seq == *f.Seq)
			if f.Code != want.Code || f.Row != wantRow || !seqOK {
				t.Errorf("got %v; want code %s row %v seq %v", f, want.Code, optInt(want.Row), optionalText(want.Seq))
			}
		})
	}
}

func optInt(p *int) any {
	if p == nil {
		return "null"
	}
	return *p
}
