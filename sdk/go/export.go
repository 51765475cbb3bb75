package auditlog

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// The fault codes of docs/FORMATS.md "Verifying an export", in the order they are checked.
const (
	FaultManifestInvalid   = "manifest_invalid"
	FaultCheckpointInvalid = "checkpoint_invalid"
	FaultRowMalformed      = "row_malformed"
	FaultRowOrder          = "row_order"
	FaultContentDigest     = "content_digest"
	FaultLeafHash          = "leaf_hash"
	FaultChainHash         = "chain_hash"
	FaultRowCount          = "row_count"
	FaultProofInvalid      = "proof_invalid"
	FaultRootMismatch      = "root_mismatch"
	FaultDataSHA256        = "data_sha256"
	FaultProofSHA256       = "proof_sha256"
)

// ExportFault is the first failure found in an export bundle. Every implementation of the log's
// formats reports a tampered bundle with the same Code, Row and Seq.
type ExportFault struct {
	Code string
	// Row is the 1-based number of the data row at fault (CSV: not counting the header), or 0
	// when the fault is not about a row.
	Row int
	// Seq is the seq of the row at fault, or nil when the fault is not about a row or the row's
	// seq could not be read.
	Seq    *uint64
	Detail string
	notRow bool // a data fault outside any row (the CSV header)
}

func (f *ExportFault) Error() string {
	msg := "export " + f.Code
	if f.Row > 0 {
		msg += " at row " + strconv.Itoa(f.Row)
		if f.Seq != nil {
			msg += " (seq " + strconv.FormatUint(*f.Seq, 10) + ")"
		}
	}
	if f.Detail != "" {
		msg += ": " + f.Detail
	}
	return msg
}

// ExportReport is what a verified export proves.
type ExportReport struct {
	Manifest *ExportManifest
	// Checkpoint is the verified checkpoint covering every row.
	Checkpoint *VerifiedCheckpoint
	Rows       uint64
	ProofNodes uint64
}

// VerifyExportDir verifies a downloaded bundle in dir: manifest.json, the data file named by the
// last part of the manifest's data key, and the proof file named by the last part of its proof
// key (proof.jsonl). See [VerifyExport].
func VerifyExportDir(dir string, keys ...CheckpointKey) (*ExportReport, error) {
	manifest, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, &ExportFault{Code: FaultManifestInvalid, Detail: "cannot read the manifest: " + err.Error()}
	}
	m, err := ParseExportManifest(manifest)
	if err != nil {
		return nil, err
	}
	open := func(key string) (*os.File, error) {
		name := path.Base(key)
		f, err := os.Open(filepath.Join(dir, name))
		if name == "." || name == "/" || name == ".." || err != nil {
			return nil, &ExportFault{Code: FaultManifestInvalid, Detail: fmt.Sprintf("the bundle has no file %q named by the manifest", name)}
		}
		return f, nil
	}
	data, err := open(m.Data.Key)
	if err != nil {
		return nil, err
	}
	defer data.Close()
	proof, err := open(m.Proof.Key)
	if err != nil {
		return nil, err
	}
	defer proof.Close()
	return VerifyExport(manifest, data, proof, keys...)
}

// VerifyExport verifies an export bundle offline against trusted checkpoint keys, exactly in the
// order of docs/FORMATS.md "Verifying an export", and returns the first failure as an
// *[ExportFault] (use errors.As). A reader that fails, or gzip that does not decompress, is a
// fault of the file being read (row_malformed at the row being read, proof_invalid, or the
// file's digest fault after the last row), as in the Rust verifier.
//
// data and proof are read once, line by line, side by side: memory stays O(log n) whatever the
// number of rows (plus one row), gzip'd data may hold any number of gzip members, and the
// SHA-256 of each file is computed over its bytes as stored.
func VerifyExport(manifest []byte, data, proof io.Reader, keys ...CheckpointKey) (*ExportReport, error) {
	m, err := ParseExportManifest(manifest)
	if err != nil {
		return nil, err
	}
	cp, err := verifyExportCheckpoint(m, keys)
	if err != nil {
		return nil, err
	}

	dataCount := &countingHash{h: sha256.New()}
	rawData := io.TeeReader(data, dataCount)
	proofCount := &countingHash{h: sha256.New()}
	tiler := &proofTiler{r: bufio.NewReaderSize(io.TeeReader(proof, proofCount), 64*1024), size: m.Checkpoint.TreeSize}

	var rows rowSource
	if m.Gzip {
		rows = &gzipRows{raw: rawData, csv: m.DataFormat == "csv"}
	} else {
		rows = plainRows(rawData, m.DataFormat == "csv")
	}

	var (
		count        int
		first, last  *uint64
		prevSeq      uint64
		prevChain    Hash
		havePrevious bool
		tenantID     = m.TenantID
		treeSize     = m.Checkpoint.TreeSize
		rowFault     = func(code string, row int, seq uint64, detail string) error {
			return &ExportFault{Code: code, Row: row, Seq: &seq, Detail: detail}
		}
	)
	for {
		r, fault, err := rows.next()
		if err != nil {
			return nil, &ExportFault{Code: FaultRowMalformed, Row: count + 1, Detail: "the data cannot be read: " + err.Error()}
		}
		if fault == nil && r == nil {
			break
		}
		count++
		if fault != nil {
			if !fault.notRow {
				fault.Row = count
			}
			return nil, fault
		}
		seq := r.seq
		if (havePrevious && seq <= prevSeq) || seq >= treeSize {
			detail := fmt.Sprintf("seq %d is not below the checkpoint's tree size %d", seq, treeSize)
			if havePrevious && seq <= prevSeq {
				detail = fmt.Sprintf("seq %d does not follow the previous row's seq %d", seq, prevSeq)
			}
			return nil, rowFault(FaultRowOrder, count, seq, detail)
		}
		if !r.erased {
			if got := ContentDigest(r.salt, r.content); got != r.contentDigest {
				return nil, rowFault(FaultContentDigest, count, seq, fmt.Sprintf("recomputed %s, the row says %s", got, r.contentDigest))
			}
		}
		// The leaf covers the exact spelling of id and received_at; another spelling of the same
		// value is no entry's.
		if !isCanonicalID(r.id) || !isCanonicalTime(r.receivedAt) {
			return nil, rowFault(FaultLeafHash, count, seq, "id or received_at is not in its canonical spelling, which no leaf hash covers")
		}
		leaf, err := EntryFields{TenantID: tenantID, Seq: seq, ID: r.id, ReceivedAt: r.receivedAt, ContentDigest: r.contentDigest}.LeafHash()
		if err != nil {
			return nil, rowFault(FaultLeafHash, count, seq, err.Error())
		}
		if leaf != r.leafHash {
			return nil, rowFault(FaultLeafHash, count, seq, fmt.Sprintf("recomputed %s, the row says %s", leaf, r.leafHash))
		}
		if seq == 0 || (havePrevious && seq == prevSeq+1) {
			previous := prevChain
			if seq == 0 {
				previous = ZeroHash
			}
			if got := ChainLink(previous, leaf); got != r.chainHash {
				return nil, rowFault(FaultChainHash, count, seq, fmt.Sprintf("recomputed %s, the row says %s", got, r.chainHash))
			}
		}
		prevSeq, prevChain, havePrevious = seq, r.chainHash, true
		if first == nil {
			first = &r.seq
		}
		last = &r.seq
		tiler.addLeaf(seq, leaf)
	}

	if uint64(count) != m.Rows || !sameOptional(first, m.FirstSeq) || !sameOptional(last, m.LastSeq) {
		return nil, &ExportFault{Code: FaultRowCount, Detail: fmt.Sprintf(
			"the data has %d rows (seq %s to %s), the manifest says %d (seq %s to %s)",
			count, optionalText(first), optionalText(last), m.Rows, optionalText(m.FirstSeq), optionalText(m.LastSeq))}
	}
	tiler.finish()
	if tiler.fault == "" && tiler.nodes != m.Proof.Nodes {
		tiler.fault = fmt.Sprintf("the proof has %d nodes, the manifest says %d", tiler.nodes, m.Proof.Nodes)
	}
	if tiler.fault != "" {
		return nil, &ExportFault{Code: FaultProofInvalid, Detail: tiler.fault}
	}
	if root := tiler.hasher.Root(); root != cp.Root {
		return nil, &ExportFault{Code: FaultRootMismatch, Detail: fmt.Sprintf("rows and proof rebuild root %s, the checkpoint signs %s", root, cp.Root)}
	}
	if _, err := io.Copy(io.Discard, rawData); err != nil {
		return nil, &ExportFault{Code: FaultDataSHA256, Detail: "the data file cannot be read to its end: " + err.Error()}
	}
	if got := dataCount.sum(); got != m.Data.SHA256 || dataCount.n != m.Data.Bytes {
		return nil, &ExportFault{Code: FaultDataSHA256, Detail: fmt.Sprintf("the data file (%d bytes) has SHA-256 %s, the manifest says %s (%d bytes)", dataCount.n, got, m.Data.SHA256, m.Data.Bytes)}
	}
	if _, err := io.Copy(io.Discard, tiler.r); err != nil {
		return nil, &ExportFault{Code: FaultProofSHA256, Detail: "the proof file cannot be read to its end: " + err.Error()}
	}
	if got := proofCount.sum(); got != m.Proof.SHA256 || proofCount.n != m.Proof.Bytes {
		return nil, &ExportFault{Code: FaultProofSHA256, Detail: fmt.Sprintf("the proof file (%d bytes) has SHA-256 %s, the manifest says %s (%d bytes)", proofCount.n, got, m.Proof.SHA256, m.Proof.Bytes)}
	}
	return &ExportReport{Manifest: m, Checkpoint: cp, Rows: uint64(count), ProofNodes: tiler.nodes}, nil
}

func verifyExportCheckpoint(m *ExportManifest, keys []CheckpointKey) (*VerifiedCheckpoint, error) {
	bad := func(detail string) error { return &ExportFault{Code: FaultCheckpointInvalid, Detail: detail} }
	cp, err := VerifyCheckpoint(m.Checkpoint.Note, keys...)
	if err != nil {
		return nil, bad(err.Error())
	}
	tenant, _ := canonicalUUID(m.TenantID)
	if want := cp.Key.Name + "/" + tenant; cp.Origin != want && cp.Origin != cp.Key.Name+"/"+m.TenantID {
		return nil, bad(fmt.Sprintf("the note's origin %q is not %q", truncate(cp.Origin), want))
	}
	if cp.Size != m.Checkpoint.TreeSize {
		return nil, bad(fmt.Sprintf("the note signs tree size %d, the manifest says %d", cp.Size, m.Checkpoint.TreeSize))
	}
	if cp.Root != m.Checkpoint.Root {
		return nil, bad(fmt.Sprintf("the note signs root %s, the manifest says %s", cp.Root, m.Checkpoint.Root))
	}
	return cp, nil
}

func sameOptional(a, b *uint64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func optionalText(v *uint64) string {
	if v == nil {
		return "null"
	}
	return strconv.FormatUint(*v, 10)
}

// countingHash hashes and counts the bytes written to it.
type countingHash struct {
	h hash.Hash
	n uint64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += uint64(len(p))
	return c.h.Write(p)
}

func (c *countingHash) sum() Hash {
	var h Hash
	copy(h[:], c.h.Sum(nil))
	return h
}

// proofTiler merges proof nodes with the rows' leaves in leaf order and checks that together
// they tile [0, tree size) with aligned nodes. The first fault is kept, not returned, because
// row faults are reported before proof faults.
type proofTiler struct {
	r      *bufio.Reader
	size   uint64
	hasher RangeHasher
	nodes  uint64
	line   int
	fault  string
	eof    bool
}

// addLeaf fills the gap before leaf seq with proof nodes, then appends the leaf.
func (t *proofTiler) addLeaf(seq uint64, leaf Hash) {
	t.fillTo(seq)
	if t.fault != "" {
		return
	}
	_ = t.hasher.Append(0, leaf) // a level-0 node is aligned everywhere
}

// finish fills the rest of the tree and checks that no node is left over.
func (t *proofTiler) finish() {
	t.fillTo(t.size)
	if t.fault != "" {
		return
	}
	if level, index, _, ok := t.next(); ok {
		t.setFault(fmt.Sprintf("proof line %d: node (%d, %d) lies beyond the tree of %d leaves", t.line, level, index, t.size))
	}
}

func (t *proofTiler) fillTo(target uint64) {
	for t.fault == "" && t.hasher.Size() < target {
		level, index, h, ok := t.next()
		if !ok {
			if t.fault == "" {
				t.setFault(fmt.Sprintf("no proof node covers leaf %d", t.hasher.Size()))
			}
			return
		}
		if level > 62 || index > (^uint64(0)>>level)-1 {
			t.setFault(fmt.Sprintf("proof line %d: node (%d, %d) is out of range", t.line, level, index))
			return
		}
		start, width := index<<level, uint64(1)<<level
		if start != t.hasher.Size() {
			t.setFault(fmt.Sprintf("proof line %d: node (%d, %d) starts at leaf %d, expected leaf %d", t.line, level, index, start, t.hasher.Size()))
			return
		}
		if start+width > target {
			t.setFault(fmt.Sprintf("proof line %d: node (%d, %d) covers leaves up to %d, past %d (a row or the tree end)", t.line, level, index, start+width-1, target-1))
			return
		}
		if err := t.hasher.Append(level, h); err != nil {
			t.setFault(fmt.Sprintf("proof line %d: %v", t.line, err))
			return
		}
	}
}

func (t *proofTiler) setFault(msg string) {
	if t.fault == "" {
		t.fault = msg
	}
}

// next reads one proof line; ok is false at the end or on a fault.
func (t *proofTiler) next() (level uint, index uint64, h Hash, ok bool) {
	if t.eof {
		return 0, 0, h, false
	}
	line, err := readLine(t.r)
	if err == io.EOF {
		t.eof = true
		return 0, 0, h, false
	}
	if err != nil {
		t.nodes++
		t.setFault(fmt.Sprintf("proof line %d: %v", t.line+1, err))
		return 0, 0, h, false
	}
	t.line++
	t.nodes++
	if err := CheckStrictJSON(line); err != nil {
		t.setFault(fmt.Sprintf("proof line %d does not parse: %v", t.line, err))
		return 0, 0, h, false
	}
	obj, err := jsonObject(line)
	if err != nil {
		t.setFault(fmt.Sprintf("proof line %d is not a JSON object", t.line))
		return 0, 0, h, false
	}
	l, okL := rawUint(obj["level"])
	i, okI := rawUint(obj["index"])
	s, okH := rawString(obj["hash"])
	parsed, errH := ParseHash(s)
	if !okL || !okI || !okH || errH != nil || l > 63 {
		t.setFault(fmt.Sprintf("proof line %d: want {\"level\",\"index\",\"hash\"} with integers and a hex hash", t.line))
		return 0, 0, h, false
	}
	return uint(l), i, parsed, true
}

// MaxLineBytes is the longest data or proof line accepted (newline excluded), which bounds the
// memory one row takes.
const MaxLineBytes = 8 << 20

// errNoNewline marks a last line without its newline: every line must end in one.
var errNoNewline = errors.New("the last line does not end with a newline")

var errLineTooLong = fmt.Errorf("a line is longer than %d bytes", MaxLineBytes)

// lineError marks a read error, so it is reported as a fault of the file being read.
type lineError struct{ err error }

func (e lineError) Error() string { return "the file cannot be read: " + e.err.Error() }

// readLine returns the next line without its newline; io.EOF at the end; errNoNewline,
// errLineTooLong or a lineError otherwise.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > MaxLineBytes+1 {
			return nil, errLineTooLong
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if len(line) == 0 {
				return nil, io.EOF
			}
			return nil, errNoNewline
		default:
			return nil, lineError{err}
		}
	}
}

// exportRow is one data row after parsing and type checks.
type exportRow struct {
	seq           uint64
	id            string
	receivedAt    string
	erased        bool
	content       []byte
	salt          []byte
	contentDigest Hash
	leafHash      Hash
	chainHash     Hash
}

// rowSource yields data rows: a row, or a fault (row_malformed, Row unset), or neither at the
// end. err is an I/O error of the underlying reader.
type rowSource interface {
	next() (*exportRow, *ExportFault, error)
}

// gzipRows decompresses a multi-member gzip stream, then reads JSONL or CSV rows. A stream that
// does not decompress is reported as a malformed row at the point it breaks.
type gzipRows struct {
	raw   io.Reader
	csv   bool
	inner rowSource
	zr    *gzip.Reader
}

func (g *gzipRows) next() (*exportRow, *ExportFault, error) {
	if g.inner == nil {
		zr, err := gzip.NewReader(g.raw)
		if err != nil {
			if errors.Is(err, io.EOF) {
				// An empty object has no gzip member: it holds no lines.
				g.inner = plainRows(strings.NewReader(""), g.csv)
				return g.inner.next()
			}
			return nil, &ExportFault{Code: FaultRowMalformed, Detail: "the data is not gzip: " + err.Error()}, nil
		}
		zr.Multistream(true)
		g.zr = zr
		g.inner = plainRows(gzipFaults{zr}, g.csv)
	}
	r, fault, err := g.inner.next()
	var gz gzipError
	if errors.As(err, &gz) {
		return nil, &ExportFault{Code: FaultRowMalformed, Detail: "the data does not decompress: " + gz.err.Error()}, nil
	}
	return r, fault, err
}

func plainRows(r io.Reader, csv bool) rowSource {
	buffered := bufio.NewReaderSize(r, 64*1024)
	if csv {
		return &csvRows{r: buffered}
	}
	return &jsonlRows{r: buffered}
}

// gzipFaults marks decompression errors so they are told apart from I/O errors.
type gzipFaults struct{ r io.Reader }

type gzipError struct{ err error }

func (e gzipError) Error() string { return e.err.Error() }

func (g gzipFaults) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF && (errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) || isFlateError(err)) {
		return n, gzipError{err}
	}
	return n, err
}
