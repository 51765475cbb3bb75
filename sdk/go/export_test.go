package auditlog

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// testLog is a tenant log built in memory the way the service builds it.
type testLog struct {
	tenant  string
	entries []testEntry
}

type testEntry struct {
	seq                     uint64
	id, receivedAt, content string
	event                   map[string]any
	salt                    []byte
	digest, leaf, chain     Hash
}

func newTestLog(t *testing.T, n int) *testLog {
	t.Helper()
	l := &testLog{tenant: "0190f6e2-0000-7000-8000-000000000001"}
	prev := ZeroHash
	for i := 0; i < n; i++ {
		action := "user.login"
		if i%3 == 1 {
			action = "document.delete"
		}
		event := map[string]any{"action": action, "actor": map[string]any{"id": fmt.Sprintf("u-%d", i), "name": "Ann, \"the\" admin"},
			"occurred_at": "2026-11-24T10:00:00Z", "metadata": map[string]any{"n": i, "note": "line1\nline2"}}
		if i%4 == 0 {
			event["resource"] = map[string]any{"type": "document", "id": fmt.Sprintf("d-%d", i)}
			event["severity"] = "high"
			delete(event, "metadata")
		}
		content, err := ContentBytes(event, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var stored map[string]any
		_ = json.Unmarshal(content, &stored)
		salt := make([]byte, SaltSize)
		_, _ = rand.Read(salt)
		e := testEntry{seq: uint64(i), id: fmt.Sprintf("0190f6e2-0000-7000-8000-%012x", 0xa00+i),
			receivedAt: "2026-11-24T10:00:00.500000Z", content: string(content), event: stored, salt: salt}
		e.digest = ContentDigest(salt, content)
		leaf, err := EntryFields{TenantID: l.tenant, Seq: e.seq, ID: e.id, ReceivedAt: e.receivedAt, ContentDigest: e.digest}.LeafHash()
		if err != nil {
			t.Fatal(err)
		}
		e.leaf, e.chain = leaf, ChainLink(prev, leaf)
		prev = e.chain
		l.entries = append(l.entries, e)
	}
	return l
}

func (l *testLog) leaves(size uint64) []Hash {
	out := make([]Hash, size)
	for i := range out {
		out[i] = l.entries[i].leaf
	}
	return out
}

// bundle is an export as the service writes it, kept as bytes so tests can tamper with it.
type bundle struct {
	manifest map[string]any
	data     []byte
	proof    []byte
}

type bundleOptions struct {
	format   string // jsonl or csv
	gzip     bool
	treeSize uint64
	keep     func(e testEntry) bool
	erase    map[uint64]bool
}

func (l *testLog) export(t *testing.T, signer *testSigner, o bundleOptions) *bundle {
	t.Helper()
	if o.keep == nil {
		o.keep = func(testEntry) bool { return true }
	}
	leaves := l.leaves(o.treeSize)
	var rows []testEntry
	for _, e := range l.entries[:o.treeSize] {
		if o.keep(e) {
			rows = append(rows, e)
		}
	}
	// The proof: each gap between rows as its largest aligned subtrees, in leaf order.
	var proof bytes.Buffer
	nodes := 0
	gap := func(a, b uint64) {
		for a < b {
			level := uint(0)
			for a%(1<<(level+1)) == 0 && a+(1<<(level+1)) <= b {
				level++
			}
			width := uint64(1) << level
			fmt.Fprintf(&proof, `{"level":%d,"index":%d,"hash":"%s"}`+"\n", level, a>>level, MerkleRoot(leaves[a:a+width]))
			nodes++
			a += width
		}
	}
	next := uint64(0)
	for _, r := range rows {
		gap(next, r.seq)
		next = r.seq + 1
	}
	gap(next, o.treeSize)

	var plain bytes.Buffer
	if o.format == "csv" {
		plain.WriteString(strings.Join(CSVColumns, ",") + "\n")
	}
	var data bytes.Buffer
	var zw *gzip.Writer
	if o.gzip {
		zw = gzip.NewWriter(&data)
	}
	for i, r := range rows {
		erased := o.erase[r.seq]
		if o.format == "csv" {
			plain.WriteString(csvLine(r, erased))
		} else {
			line := map[string]any{"seq": r.seq, "id": r.id, "received_at": r.receivedAt, "erased": erased, "event": r.event,
				"salt": base64.StdEncoding.EncodeToString(r.salt), "content_digest": r.digest, "leaf_hash": r.leaf, "chain_hash": r.chain}
			if erased {
				line["event"], line["salt"] = nil, nil
			}
			b, _ := json.Marshal(line)
			plain.Write(b)
			plain.WriteByte('\n')
		}
		// Several gzip members, as the service writes them in chunks.
		if zw != nil && (i%3 == 2 || i == len(rows)-1) {
			_, _ = zw.Write(plain.Bytes())
			_ = zw.Close()
			plain.Reset()
			zw = gzip.NewWriter(&data)
		}
	}
	if zw != nil {
		if plain.Len() > 0 || len(rows) == 0 {
			_, _ = zw.Write(plain.Bytes())
			_ = zw.Close()
		}
	} else {
		data.Write(plain.Bytes())
	}
	root := MerkleRoot(leaves)
	name := "data." + o.format
	if o.gzip {
		name += ".gz"
	}
	var first, last any
	if len(rows) > 0 {
		first, last = rows[0].seq, rows[len(rows)-1].seq
	}
	prefix := "exports/" + l.tenant + "/exp-1/"
	return &bundle{
		data:  data.Bytes(),
		proof: proof.Bytes(),
		manifest: map[string]any{
			"format": ExportFormat, "export_id": "0190f6e2-0000-7000-8000-0000000000ee", "tenant_id": l.tenant,
			"created_at": "2026-11-24T10:00:00Z", "completed_at": "2026-11-24T10:00:01Z", "filter": map[string]any{},
			"data_format": o.format, "gzip": o.gzip, "rows": len(rows), "first_seq": first, "last_seq": last,
			"data":       map[string]any{"key": prefix + name, "sha256": Hash(sha256.Sum256(data.Bytes())), "bytes": data.Len()},
			"proof":      map[string]any{"key": prefix + "proof.jsonl", "sha256": Hash(sha256.Sum256(proof.Bytes())), "bytes": proof.Len(), "nodes": nodes},
			"checkpoint": map[string]any{"tree_size": o.treeSize, "root": root, "note": signer.note(t, signer.key.Name+"/"+l.tenant, o.treeSize, root)},
		},
	}
}

func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\r\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

func csvLine(r testEntry, erased bool) string {
	str := func(v any) string {
		s, _ := v.(string)
		return s
	}
	sub := func(k, m string) string {
		obj, _ := r.event[k].(map[string]any)
		return str(obj[m])
	}
	metadata := ""
	if md, ok := r.event["metadata"]; ok {
		b, _ := CanonicalizeValue(md)
		metadata = string(b)
	}
	fields := []string{fmt.Sprint(r.seq), r.id, r.receivedAt, "false", str(r.event["occurred_at"]), str(r.event["action"]),
		sub("actor", "id"), sub("actor", "type"), sub("actor", "name"), sub("resource", "type"), sub("resource", "id"),
		sub("resource", "name"), str(r.event["outcome"]), str(r.event["severity"]), str(r.event["source"]),
		str(r.event["request_id"]), str(r.event["session_id"]), metadata, r.content,
		base64.StdEncoding.EncodeToString(r.salt), r.digest.String(), r.leaf.String(), r.chain.String()}
	if erased {
		for i := 3; i <= 19; i++ {
			fields[i] = ""
		}
		fields[3] = "true"
	}
	for i, f := range fields {
		fields[i] = csvField(f)
	}
	return strings.Join(fields, ",") + "\n"
}

func (b *bundle) verify(keys ...CheckpointKey) (*ExportReport, error) {
	manifest, _ := json.Marshal(b.manifest)
	return VerifyExport(manifest, bytes.NewReader(b.data), bytes.NewReader(b.proof), keys...)
}

// refresh recomputes the manifest's hashes after a tamper, so later checks see the change.
func (b *bundle) refresh() {
	b.manifest["data"].(map[string]any)["sha256"] = Hash(sha256.Sum256(b.data))
	b.manifest["data"].(map[string]any)["bytes"] = len(b.data)
	b.manifest["proof"].(map[string]any)["sha256"] = Hash(sha256.Sum256(b.proof))
	b.manifest["proof"].(map[string]any)["bytes"] = len(b.proof)
}

func wantFault(t *testing.T, err error, code string, row int, seq int64) {
	t.Helper()
	var f *ExportFault
	if !errors.As(err, &f) {
		t.Fatalf("want fault %s, got %v", code, err)
	}
	gotSeq := int64(-1)
	if f.Seq != nil {
		gotSeq = int64(*f.Seq)
	}
	if f.Code != code || f.Row != row || gotSeq != seq {
		t.Fatalf("want %s at row %d seq %d, got %s at row %d seq %d (%v)", code, row, seq, f.Code, f.Row, gotSeq, f)
	}
}

func TestValidExportsVerify(t *testing.T) {
	signer := newTestSigner(t, "audit.test/log")
	l := newTestLog(t, 23)
	logins := func(e testEntry) bool { return e.event["action"] == "user.login" }
	cases := map[string]bundleOptions{
		"jsonl":                {format: "jsonl", treeSize: 23},
		"csv":                  {format: "csv", treeSize: 23},
		"gzip csv":             {format: "csv", gzip: true, treeSize: 23},
		"gzip jsonl filtered":  {format: "jsonl", gzip: true, treeSize: 21, keep: logins},
		"csv filtered":         {format: "csv", treeSize: 22, keep: logins},
		"empty":                {format: "jsonl", treeSize: 20, keep: func(testEntry) bool { return false }},
		"empty gzip":           {format: "csv", gzip: true, treeSize: 5, keep: func(testEntry) bool { return false }},
		"erased rows jsonl":    {format: "jsonl", treeSize: 23, erase: map[uint64]bool{0: true, 5: true}},
		"erased rows csv":      {format: "csv", treeSize: 23, erase: map[uint64]bool{3: true}},
		"single row of a tree": {format: "jsonl", treeSize: 17, keep: func(e testEntry) bool { return e.seq == 16 }},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			b := l.export(t, signer, o)
			report, err := b.verify(signer.key)
			if err != nil {
				t.Fatal(err)
			}
			if report.Rows != uint64(b.manifest["rows"].(int)) || report.Checkpoint.Size != o.treeSize {
				t.Errorf("report %+v", report)
			}
		})
	}
}

func TestTamperedExportsReportTheFirstFault(t *testing.T) {
	signer := newTestSigner(t, "audit.test/log")
	other := newTestSigner(t, "audit.test/log")
	l := newTestLog(t, 12)
	fresh := func(format string) *bundle { return l.export(t, signer, bundleOptions{format: format, treeSize: 12}) }
	lines := func(b *bundle) []string { return strings.SplitAfter(string(b.data), "\n") }

	t.Run("manifest format", func(t *testing.T) {
		b := fresh("jsonl")
		b.manifest["format"] = "audit-log-export/v2"
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultManifestInvalid, 0, -1)
	})
	t.Run("manifest member of the wrong type", func(t *testing.T) {
		b := fresh("jsonl")
		b.manifest["rows"] = "12"
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultManifestInvalid, 0, -1)
	})
	t.Run("untrusted key", func(t *testing.T) {
		_, err := fresh("jsonl").verify(other.key)
		wantFault(t, err, FaultCheckpointInvalid, 0, -1)
	})
	t.Run("changed manifest root", func(t *testing.T) {
		b := fresh("jsonl")
		b.manifest["checkpoint"].(map[string]any)["root"] = EmptyRoot
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultCheckpointInvalid, 0, -1)
	})
	t.Run("another tenant's checkpoint", func(t *testing.T) {
		b := fresh("jsonl")
		cp := b.manifest["checkpoint"].(map[string]any)
		cp["note"] = signer.note(t, signer.key.Name+"/0190f6e2-0000-7000-8000-000000000002", 12, cp["root"].(Hash))
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultCheckpointInvalid, 0, -1)
	})
	t.Run("changed event", func(t *testing.T) {
		b := fresh("jsonl")
		b.data = bytes.Replace(b.data, []byte(`"u-4"`), []byte(`"u-X"`), 1)
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultContentDigest, 5, 4)
	})
	t.Run("unparsable row", func(t *testing.T) {
		b := fresh("jsonl")
		ls := lines(b)
		ls[2] = "{" + ls[2]
		b.data = []byte(strings.Join(ls, ""))
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultRowMalformed, 3, -1)
	})
	t.Run("erased disagrees with event", func(t *testing.T) {
		b := fresh("jsonl")
		b.data = bytes.Replace(b.data, []byte(`"erased":false`), []byte(`"erased":true`), 1)
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultRowMalformed, 1, 0)
	})
	t.Run("changed received_at", func(t *testing.T) {
		b := fresh("jsonl")
		ls := lines(b)
		ls[6] = strings.Replace(ls[6], "10:00:00.500000Z", "10:00:00.500001Z", 1)
		b.data = []byte(strings.Join(ls, ""))
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultLeafHash, 7, 6)
	})
	t.Run("changed chain hash", func(t *testing.T) {
		b := fresh("jsonl")
		chain := l.entries[3].chain.String()
		b.data = bytes.Replace(b.data, []byte(chain), []byte(strings.Repeat("0", 64)), 1)
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultChainHash, 4, 3)
	})
	t.Run("two swapped rows", func(t *testing.T) {
		b := fresh("jsonl")
		ls := lines(b)
		ls[4], ls[5] = ls[5], ls[4]
		b.data = []byte(strings.Join(ls, ""))
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultRowOrder, 6, 4)
	})
	t.Run("last row dropped", func(t *testing.T) {
		b := fresh("jsonl")
		ls := lines(b)
		b.data = []byte(strings.Join(ls[:len(ls)-2], ""))
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultRowCount, 0, -1)
	})
	t.Run("last row dropped and manifest adjusted", func(t *testing.T) {
		b := fresh("jsonl")
		ls := lines(b)
		b.data = []byte(strings.Join(ls[:len(ls)-2], ""))
		b.manifest["rows"], b.manifest["last_seq"] = 11, 10
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultProofInvalid, 0, -1)
	})
	t.Run("row beyond the checkpoint", func(t *testing.T) {
		b := l.export(t, signer, bundleOptions{format: "jsonl", treeSize: 8})
		line, _ := json.Marshal(map[string]any{"seq": 8, "id": l.entries[8].id, "received_at": l.entries[8].receivedAt, "erased": true,
			"event": nil, "salt": nil, "content_digest": l.entries[8].digest, "leaf_hash": l.entries[8].leaf, "chain_hash": l.entries[8].chain})
		b.data = append(b.data, append(line, '\n')...)
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultRowOrder, 9, 8)
	})
	t.Run("changed proof node", func(t *testing.T) {
		b := l.export(t, signer, bundleOptions{format: "jsonl", treeSize: 12, keep: func(e testEntry) bool { return e.seq%2 == 0 }})
		b.proof = bytes.Replace(b.proof, []byte(l.entries[1].leaf.String()), []byte(strings.Repeat("1", 64)), 1)
		b.refresh()
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultRootMismatch, 0, -1)
	})
	t.Run("proof node missing", func(t *testing.T) {
		b := l.export(t, signer, bundleOptions{format: "jsonl", treeSize: 12, keep: func(e testEntry) bool { return e.seq%2 == 0 }})
		b.proof = b.proof[bytes.IndexByte(b.proof, '\n')+1:]
		b.refresh()
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultProofInvalid, 0, -1)
	})
	t.Run("proof line unparsable", func(t *testing.T) {
		b := l.export(t, signer, bundleOptions{format: "jsonl", treeSize: 12, keep: func(e testEntry) bool { return e.seq < 4 }})
		b.proof = append([]byte("not json\n"), b.proof...)
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultProofInvalid, 0, -1)
	})
	t.Run("data sha256", func(t *testing.T) {
		b := fresh("jsonl")
		b.manifest["data"].(map[string]any)["sha256"] = EmptyRoot
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultDataSHA256, 0, -1)
	})
	t.Run("proof sha256", func(t *testing.T) {
		b := l.export(t, signer, bundleOptions{format: "jsonl", treeSize: 12, keep: func(e testEntry) bool { return e.seq < 4 }})
		b.manifest["proof"].(map[string]any)["sha256"] = EmptyRoot
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultProofSHA256, 0, -1)
	})
	t.Run("csv copy column", func(t *testing.T) {
		b := fresh("csv")
		b.data = bytes.Replace(b.data, []byte(",u-2,"), []byte(",u-9,"), 1)
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultRowMalformed, 3, 2)
	})
	t.Run("csv event column", func(t *testing.T) {
		b := fresh("csv")
		// Only the event column holds occurred_at as a member name; a space keeps it valid JSON
		// with the same values, so only the digest can tell.
		b.data = []byte(strings.Replace(string(b.data), `""occurred_at"":`, `""occurred_at"": `, 1))
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultContentDigest, 1, 0)
	})
	t.Run("csv header", func(t *testing.T) {
		b := fresh("csv")
		b.data = bytes.Replace(b.data, []byte("seq,id"), []byte("id,seq"), 1)
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultRowMalformed, 0, -1)
	})
	t.Run("last line without newline", func(t *testing.T) {
		b := fresh("csv")
		b.data = b.data[:len(b.data)-1]
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultRowMalformed, 12, -1)
	})
	t.Run("id in another spelling", func(t *testing.T) {
		b := fresh("jsonl")
		b.data = bytes.Replace(b.data, []byte(l.entries[2].id), []byte(strings.ToUpper(l.entries[2].id)), 1)
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultLeafHash, 3, 2)
	})
	t.Run("uppercase hash", func(t *testing.T) {
		b := fresh("jsonl")
		b.data = bytes.Replace(b.data, []byte(l.entries[2].leaf.String()), []byte(strings.ToUpper(l.entries[2].leaf.String())), 1)
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultRowMalformed, 3, 2)
	})
	t.Run("gzip member corrupted", func(t *testing.T) {
		b := l.export(t, signer, bundleOptions{format: "jsonl", gzip: true, treeSize: 12})
		b.data[len(b.data)-5] ^= 0xff // the last member's CRC
		_, err := b.verify(signer.key)
		var f *ExportFault
		if !errors.As(err, &f) || f.Code != FaultRowMalformed {
			t.Fatalf("want row_malformed, got %v", err)
		}
	})
}

// Each forged text carries a duplicate member whose last occurrence is the genuine value, so a
// last-wins decoder such as encoding/json would verify it; the strict reading refuses it.
func TestExportsWithTextOutsideStrictJSONAreRefused(t *testing.T) {
	signer := newTestSigner(t, "audit.test/log")
	l := newTestLog(t, 12)
	fresh := func(format string) *bundle { return l.export(t, signer, bundleOptions{format: format, treeSize: 12}) }
	replaceInLine := func(t *testing.T, data []byte, index int, old, new string) []byte {
		t.Helper()
		ls := strings.SplitAfter(string(data), "\n")
		if strings.Count(ls[index], old) != 1 {
			t.Fatalf("line %d does not hold %s once: %s", index, old, ls[index])
		}
		ls[index] = strings.Replace(ls[index], old, new, 1)
		return []byte(strings.Join(ls, ""))
	}
	wantDetail := func(t *testing.T, err error, detail string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), detail) {
			t.Errorf("the fault should say %q: %v", detail, err)
		}
	}

	t.Run("duplicate member in a row", func(t *testing.T) {
		b := fresh("jsonl")
		b.data = replaceInLine(t, b.data, 4, `{"chain_hash":`, `{"leaf_hash":"`+strings.Repeat("00", 32)+`","chain_hash":`)
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultRowMalformed, 5, 4)
		wantDetail(t, err, "duplicate_member at leaf_hash")
	})
	t.Run("duplicate member in an event", func(t *testing.T) {
		b := fresh("jsonl")
		b.data = replaceInLine(t, b.data, 2, `"event":{`, `"event":{"action":"user.logout",`)
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultRowMalformed, 3, 2)
		wantDetail(t, err, "duplicate_member at event.action")
	})
	// As the Rust verifier names the seq only of rows serde_json reads: a lone surrogate escape
	// or a number beyond the float64 range (next to a duplicate) leaves it unknown.
	t.Run("row serde_json cannot read either", func(t *testing.T) {
		b := fresh("jsonl")
		b.data = replaceInLine(t, b.data, 3, `"id":"u-3"`, `"id":"u-3\ud800"`)
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultRowMalformed, 4, -1)
		wantDetail(t, err, "invalid_string at event.actor.id")
		b = fresh("jsonl")
		b.data = replaceInLine(t, b.data, 3, `{"chain_hash":`, `{"seq":3,"seq":3,"n":1e400,"chain_hash":`)
		_, err = b.verify(signer.key)
		wantFault(t, err, FaultRowMalformed, 4, -1)
		wantDetail(t, err, "duplicate_member at seq")
	})
	t.Run("unsafe integer in an event", func(t *testing.T) {
		b := fresh("jsonl")
		b.data = replaceInLine(t, b.data, 1, `"metadata":{"n":1,`, `"metadata":{"n":9007199254740993,`)
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultRowMalformed, 2, 1)
		wantDetail(t, err, "unsafe_integer at event.metadata.n")
	})
	t.Run("duplicate member in a CSV event column", func(t *testing.T) {
		b := fresh("csv")
		// Line 0 is the header; line 3 holds seq 2, a user.login.
		b.data = replaceInLine(t, b.data, 3, `"{""action"":""user.login"",`, `"{""action"":""user.logout"",""action"":""user.login"",`)
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultRowMalformed, 3, 2)
		wantDetail(t, err, "duplicate_member at action")
	})
	t.Run("duplicate member in the manifest", func(t *testing.T) {
		b := fresh("jsonl")
		manifest, _ := json.Marshal(b.manifest)
		forged := strings.Replace(string(manifest), `"rows":12,`, `"rows":11,"rows":12,`, 1)
		if forged == string(manifest) {
			t.Fatal("the manifest has no rows member to duplicate")
		}
		_, err := VerifyExport([]byte(forged), bytes.NewReader(b.data), bytes.NewReader(b.proof), signer.key)
		wantFault(t, err, FaultManifestInvalid, 0, -1)
		wantDetail(t, err, "duplicate_member at rows")
	})
	t.Run("duplicate member in a proof line", func(t *testing.T) {
		b := l.export(t, signer, bundleOptions{format: "jsonl", treeSize: 12, keep: func(e testEntry) bool { return e.seq == 3 }})
		b.proof = replaceInLine(t, b.proof, 0, `{"level":`, `{"hash":"`+strings.Repeat("ab", 32)+`","level":`)
		_, err := b.verify(signer.key)
		wantFault(t, err, FaultProofInvalid, 0, -1)
		wantDetail(t, err, "duplicate_member at hash")
	})
}
