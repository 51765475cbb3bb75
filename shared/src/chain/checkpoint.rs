//! Checkpoints: the signed statement "the log named `origin` had `size` leaves and this Merkle
//! root", in the C2SP formats that transparency-log tooling already reads.
//!
//! # Note text (c2sp.org/tlog-checkpoint)
//!
//! ```text
//! audit.example.com/log/v1
//! 1042
//! 6ZW0wFd3lXOqCAryJrxnCp4CHZJLhtQcvRGNqhz8MUw=
//! timestamp 1735689600
//! ```
//!
//! One line each for the origin, the tree size in decimal without leading zeros, and the standard
//! base64 (RFC 4648 section 4, padded) of the 32-byte RFC 6962 root hash; then optional extension
//! lines. Every line ends in `\n`. The one extension this log writes is `timestamp <unix seconds>`,
//! the time the log signed the checkpoint, read back with [`Checkpoint::timestamp`]. Other tools
//! treat extension lines as opaque, and tlog-checkpoint discourages them because monitors cannot
//! audit them, so the timestamp is the signer's claim only and nothing else goes there.
//!
//! # Signed note (c2sp.org/signed-note)
//!
//! The note is the text above, a blank line, then one line per signature:
//! `— <key name> <base64(key ID || signature)>\n` (U+2014 em dash, space). Key names are non-empty
//! and contain no Unicode space and no `+`; a schema-less URL is recommended.
//!
//! This log signs with ECDSA P-256, signature type `0x02` of signed-note ("ECDSA signatures as
//! implemented by github.com/transparency-dev/witness"). Checked against that implementation
//! (`internal/note/note_verifier.go`) and golang.org/x/mod `sumdb/note`:
//!
//! - key ID: the first 4 bytes of SHA-256 over the DER `SubjectPublicKeyInfo` of the public key,
//!   big-endian; unlike Ed25519 keys, neither the key name nor the type byte is hashed in.
//! - signature: ASN.1 DER `ECDSA-Sig-Value` over SHA-256 of the note text (the body including its
//!   final newline, excluding the blank line). AWS KMS `Sign` with `ECDSA_SHA_256` and message
//!   type `RAW` returns exactly this.
//! - verifier key string (what Go tools take): `<key name>+<key ID, 8 hex>+base64(0x02 || DER
//!   SPKI)`, see [`verifier_key`].
//!
//! [`verify`] follows the signed-note rules: signatures by other keys (another name or another
//! key ID) are ignored, so witness cosignatures can be appended; every signature by the trusted
//! key must verify; and at least one must be present. The published Rekor checkpoint in the tests
//! pins interoperability with those implementations.

use super::hash::{sha256, Hash};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::der::pem::PemLabel as _;
use p256::pkcs8::{DecodePublicKey, Document, SubjectPublicKeyInfoRef};
use std::fmt::Write as _;

/// The signed-note signature type of ECDSA keys, the first byte of a verifier key.
pub const SIGNATURE_TYPE_ECDSA: u8 = 0x02;

/// The prefix of the one extension line this log writes.
pub const TIMESTAMP_PREFIX: &str = "timestamp ";

/// Notes with more signature lines than this are rejected unread. signed-note requires accepting
/// at least 16; golang.org/x/mod stops at 100 too.
pub const MAX_SIGNATURES: usize = 100;

const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// The head of the log at one size, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log; conventionally equal to the signing key name.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 6962 Merkle root over the first `size` leaves.
    pub root: Hash,
    /// Extension lines without their newline, in order.
    pub extensions: Vec<String>,
}

/// A checkpoint with one signature, and the exact note text that carries both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    /// The full signed note, ready to publish.
    pub note: String,
    pub key_name: String,
    pub key_id: [u8; 4],
    /// ASN.1 DER ECDSA signature over `checkpoint.body()`.
    pub signature: Vec<u8>,
}

/// Why a checkpoint or note was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the note text does not end with a newline")]
    MissingFinalNewline,
    #[error("a checkpoint needs an origin, a tree size and a root hash line")]
    MissingLine,
    #[error("the origin line is empty")]
    EmptyOrigin,
    #[error("tree size {0:?} is not a decimal number without leading zeros")]
    InvalidSize(String),
    #[error("the root hash line is not the padded base64 of 32 bytes")]
    InvalidRoot,
    #[error("extension line {0} is empty")]
    EmptyExtension(usize),
    #[error("extension line {0:?} is not `timestamp <unix seconds>`")]
    InvalidTimestamp(String),
    #[error("more than one timestamp extension line")]
    DuplicateTimestamp,
    #[error("the text contains a control character (only newlines between lines are allowed)")]
    ControlCharacter,
    #[error("key name {0:?} is empty or contains a space or '+'")]
    InvalidKeyName(String),
    #[error("no blank line separates the note text from its signatures")]
    MissingBlankLine,
    #[error("signature line {0} is malformed")]
    MalformedSignatureLine(usize),
    #[error("the note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("the public key is not a P-256 SubjectPublicKeyInfo")]
    InvalidPublicKey,
    #[error("the note has no signature by key {key_name} with key ID {key_id}")]
    NoSignatureByKey { key_name: String, key_id: String },
    #[error("a signature by key {key_name} with key ID {key_id} does not verify")]
    InvalidSignature { key_name: String, key_id: String },
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Self {
        Checkpoint { origin: origin.into(), size, root, extensions: Vec::new() }
    }

    /// Adds the `timestamp <unix seconds>` extension line.
    pub fn with_timestamp(mut self, unix_seconds: u64) -> Self {
        self.extensions.push(format!("{TIMESTAMP_PREFIX}{unix_seconds}"));
        self
    }

    /// The signing time from the timestamp extension line, if there is one.
    pub fn timestamp(&self) -> Option<u64> {
        self.extensions.iter().find_map(|line| line.strip_prefix(TIMESTAMP_PREFIX)).and_then(parse_decimal)
    }

    /// Checks what [`Checkpoint::parse_body`] would check, so that `body()` of a valid checkpoint
    /// always parses back to the same value.
    pub fn validate(&self) -> Result<(), CheckpointError> {
        if self.origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        check_no_control_characters(&self.origin)?;
        let mut timestamps = 0;
        for (i, line) in self.extensions.iter().enumerate() {
            if line.is_empty() {
                return Err(CheckpointError::EmptyExtension(i));
            }
            check_no_control_characters(line)?;
            if let Some(value) = line.strip_prefix(TIMESTAMP_PREFIX) {
                if parse_decimal(value).is_none() {
                    return Err(CheckpointError::InvalidTimestamp(line.clone()));
                }
                timestamps += 1;
                if timestamps > 1 {
                    return Err(CheckpointError::DuplicateTimestamp);
                }
            }
        }
        Ok(())
    }

    /// The note text: the exact bytes that are signed. Call [`Checkpoint::validate`] first when the
    /// fields come from outside; a newline in the origin would otherwise shift every line.
    pub fn body(&self) -> String {
        let mut out = String::with_capacity(self.origin.len() + 80);
        // Writing into a String cannot fail.
        let _ = write!(out, "{}\n{}\n{}\n", self.origin, self.size, BASE64.encode(self.root.0));
        for line in &self.extensions {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// Parses note text strictly: only what [`Checkpoint::body`] produces is accepted.
    pub fn parse_body(text: &str) -> Result<Checkpoint, CheckpointError> {
        let text = text.strip_suffix('\n').ok_or(CheckpointError::MissingFinalNewline)?;
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        let size_line = lines.next().ok_or(CheckpointError::MissingLine)?;
        let root_line = lines.next().ok_or(CheckpointError::MissingLine)?;
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let size = parse_decimal(size_line).ok_or_else(|| CheckpointError::InvalidSize(size_line.into()))?;
        // The standard engine insists on padding and zero trailing bits, so each root has exactly
        // one accepted spelling.
        let root = BASE64
            .decode(root_line)
            .ok()
            .and_then(|bytes| Hash::from_slice(&bytes).ok())
            .ok_or(CheckpointError::InvalidRoot)?;
        let checkpoint =
            Checkpoint { origin: origin.to_owned(), size, root, extensions: lines.map(str::to_owned).collect() };
        checkpoint.validate()?;
        Ok(checkpoint)
    }
}

/// Parses ASCII decimal without sign, spaces or leading zeros ("0" itself is fine).
fn parse_decimal(s: &str) -> Option<u64> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical {
        s.parse().ok()
    } else {
        None
    }
}

fn check_no_control_characters(s: &str) -> Result<(), CheckpointError> {
    if s.chars().any(char::is_control) {
        return Err(CheckpointError::ControlCharacter);
    }
    Ok(())
}

/// Checks a signed-note key name: non-empty, no Unicode space, no `+`, no control character.
pub fn validate_key_name(name: &str) -> Result<(), CheckpointError> {
    let valid = !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control() || c == '+');
    if valid {
        Ok(())
    } else {
        Err(CheckpointError::InvalidKeyName(name.to_owned()))
    }
}

/// The signed-note key ID of an ECDSA key: `SHA-256(DER SPKI)[..4]`.
pub fn key_id_ecdsa(spki_der: &[u8]) -> [u8; 4] {
    let digest = sha256(&[spki_der]);
    [digest.0[0], digest.0[1], digest.0[2], digest.0[3]]
}

/// The verifier key string Go note tooling takes for an ECDSA key:
/// `<key name>+<key ID as 8 hex digits>+base64(0x02 || DER SPKI)`.
pub fn verifier_key(key_name: &str, spki_der: &[u8]) -> Result<String, CheckpointError> {
    validate_key_name(key_name)?;
    parse_public_key(spki_der)?;
    let mut material = Vec::with_capacity(1 + spki_der.len());
    material.push(SIGNATURE_TYPE_ECDSA);
    material.extend_from_slice(spki_der);
    Ok(format!("{key_name}+{}+{}", hex::encode(key_id_ecdsa(spki_der)), BASE64.encode(material)))
}

/// The DER SPKI inside a `-----BEGIN PUBLIC KEY-----` PEM block, as is (not re-encoded, so the key
/// ID stays that of the original DER), after checking that it is a P-256 key.
pub fn public_key_der_from_pem(pem: &str) -> Result<Vec<u8>, CheckpointError> {
    let (label, document) = Document::from_pem(pem.trim()).map_err(|_| CheckpointError::InvalidPublicKey)?;
    SubjectPublicKeyInfoRef::validate_pem_label(label).map_err(|_| CheckpointError::InvalidPublicKey)?;
    parse_public_key(document.as_bytes())?;
    Ok(document.as_bytes().to_vec())
}

/// The PEM form (`-----BEGIN PUBLIC KEY-----`) of a P-256 key's DER SPKI, byte for byte the same
/// DER, so [`public_key_der_from_pem`] gives back the input and the key ID is unchanged.
pub fn public_key_pem(spki_der: &[u8]) -> Result<String, CheckpointError> {
    parse_public_key(spki_der)?;
    Document::try_from(spki_der)
        .and_then(|d| d.to_pem(SubjectPublicKeyInfoRef::PEM_LABEL, p256::pkcs8::LineEnding::LF))
        .map_err(|_| CheckpointError::InvalidPublicKey)
}

/// Checks that `spki_der` is the DER `SubjectPublicKeyInfo` of a P-256 public key.
pub fn validate_public_key(spki_der: &[u8]) -> Result<(), CheckpointError> {
    parse_public_key(spki_der).map(|_| ())
}

fn parse_public_key(spki_der: &[u8]) -> Result<VerifyingKey, CheckpointError> {
    VerifyingKey::from_public_key_der(spki_der).map_err(|_| CheckpointError::InvalidPublicKey)
}

/// Builds the signed note from a checkpoint and a DER signature over its body. Refuses inputs that
/// would produce a note [`verify`] cannot parse.
pub fn assemble(
    checkpoint: Checkpoint,
    key_name: &str,
    key_id: [u8; 4],
    der_signature: Vec<u8>,
) -> Result<SignedCheckpoint, CheckpointError> {
    checkpoint.validate()?;
    validate_key_name(key_name)?;
    let mut signature_field = Vec::with_capacity(4 + der_signature.len());
    signature_field.extend_from_slice(&key_id);
    signature_field.extend_from_slice(&der_signature);
    let note = format!("{}\n{SIGNATURE_PREFIX}{key_name} {}\n", checkpoint.body(), BASE64.encode(signature_field));
    Ok(SignedCheckpoint { checkpoint, note, key_name: key_name.to_owned(), key_id, signature: der_signature })
}

/// Verifies a signed checkpoint note against one trusted key (`key_name` and the DER SPKI of its
/// P-256 public key) and returns the checkpoint it carries.
pub fn verify(note: &str, key_name: &str, spki_der: &[u8]) -> Result<Checkpoint, CheckpointError> {
    validate_key_name(key_name)?;
    let public_key = parse_public_key(spki_der)?;
    let key_id = key_id_ecdsa(spki_der);

    if note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(CheckpointError::ControlCharacter);
    }
    // The text ends at the last blank line: the text's own final newline stays with the text.
    let split = note.rfind("\n\n").ok_or(CheckpointError::MissingBlankLine)?;
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    let signatures = signatures.strip_suffix('\n').ok_or(CheckpointError::MalformedSignatureLine(0))?;

    let mut found = false;
    for (i, line) in signatures.split('\n').enumerate() {
        if i >= MAX_SIGNATURES {
            return Err(CheckpointError::TooManySignatures);
        }
        let (name, id, signature) = parse_signature_line(line, i)?;
        if name != key_name || id != key_id {
            // Someone else's signature, such as a witness cosignature: not ours to judge.
            continue;
        }
        let valid = Signature::from_der(&signature)
            .is_ok_and(|signature| public_key.verify(text.as_bytes(), &signature).is_ok());
        if !valid {
            return Err(CheckpointError::InvalidSignature {
                key_name: key_name.to_owned(),
                key_id: hex::encode(key_id),
            });
        }
        found = true;
    }
    if !found {
        return Err(CheckpointError::NoSignatureByKey { key_name: key_name.to_owned(), key_id: hex::encode(key_id) });
    }
    Checkpoint::parse_body(text)
}

/// Splits `— <name> <base64(key ID || signature)>` into name, key ID and signature bytes.
fn parse_signature_line(line: &str, index: usize) -> Result<(&str, [u8; 4], Vec<u8>), CheckpointError> {
    let malformed = || CheckpointError::MalformedSignatureLine(index);
    let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(malformed)?;
    let (name, encoded) = rest.split_once(' ').ok_or_else(malformed)?;
    validate_key_name(name).map_err(|_| malformed())?;
    let mut decoded = BASE64.decode(encoded).map_err(|_| malformed())?;
    if decoded.len() < 5 {
        return Err(malformed());
    }
    let signature = decoded.split_off(4);
    let key_id = [decoded[0], decoded[1], decoded[2], decoded[3]];
    Ok((name, key_id, signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer as _;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::EncodePublicKey as _;

    const ORIGIN: &str = "audit.example.com/log/v1";
    const GOLDEN_BODY: &str = "audit.example.com/log/v1\n\
                               1042\n\
                               fkO00iomjMuosSlAEwXbHIShbj7WsZhq/YIigYfwqR4=\n\
                               timestamp 1735689600\n";
    // The SPKI of the key with secret scalar 0x0707..07 and its key ID, computed independently with
    // Python's `cryptography` package.
    const GOLDEN_SPKI_HEX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200041e18532fd4\
                                   754c02f3041d9c75ceb33b83ffd81ac7ce4fe882ccb1c98bc5896ea46c311c4e\
                                   2ff40dd96a3653e6e45445d32dfe486eced75c7a90c6a18881c0a3";
    const GOLDEN_KEY_ID: [u8; 4] = [0xce, 0x97, 0xec, 0x20];
    // GOLDEN_BODY signed by that key (RFC 6979 nonce); the signature also checks out with Python's
    // `cryptography` (ECDSA, SHA-256, DER), which pins the signing convention independently.
    const GOLDEN_SIGNATURE: &str =
        "zpfsIDBFAiEAiN3TroxENWdIzlE4H98j5Q5zVTbenIgOTXiij1eaLjICID61folF2b+jT6f0b0vPyzJJhmlk9rNpolpGYkuGE+Y6";
    const GOLDEN_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHhhTL9R1TALzBB2cdc6zO4P/2BrH
zk/ogsyxyYvFiW6kbDEcTi/0DdlqNlPm5FRF0y3+SG7O11x6kMahiIHAow==
-----END PUBLIC KEY-----
";

    // A published Sigstore Rekor checkpoint and its key, as used by the tests of the Go ECDSA note
    // verifier (google/trillian-examples internal/note/note_verifier_test.go).
    const REKOR_NOTE: &str = "Rekor\n798034\nf+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0=\n\n\
        \u{2014} rekor.sigstore.dev wNI9ajBEAiARInWIWyCdyG27CO6LPnPekyw20qO0YJfoaPaowGp/XgIgc+qEHS3+GKVClgqq20uDLet7MCoTURUCRdxwWBHHufk=\n";
    const REKOR_VERIFIER_KEY: &str = "rekor.sigstore.dev+c0d23d6a+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc=";

    fn signing_key(byte: u8) -> SigningKey {
        SigningKey::from_slice(&[byte; 32]).expect("a valid scalar")
    }

    fn spki(key: &SigningKey) -> Vec<u8> {
        key.verifying_key().to_public_key_der().expect("encodable").as_bytes().to_vec()
    }

    fn golden_checkpoint() -> Checkpoint {
        Checkpoint::new(ORIGIN, 1042, sha256(&[b"golden root"])).with_timestamp(1_735_689_600)
    }

    fn sign_with(key: &SigningKey, key_name: &str, checkpoint: Checkpoint) -> SignedCheckpoint {
        let signature: Signature = key.sign(checkpoint.body().as_bytes());
        let key_id = key_id_ecdsa(&spki(key));
        assemble(checkpoint, key_name, key_id, signature.to_der().as_bytes().to_vec()).expect("valid input")
    }

    fn signed_golden() -> (SignedCheckpoint, Vec<u8>) {
        let key = signing_key(7);
        (sign_with(&key, ORIGIN, golden_checkpoint()), spki(&key))
    }

    fn verify_altered(from: &str, to: &str) -> Result<Checkpoint, CheckpointError> {
        let (signed, spki) = signed_golden();
        let altered = signed.note.replacen(from, to, 1);
        assert_ne!(altered, signed.note, "the test must change the note");
        verify(&altered, ORIGIN, &spki)
    }

    fn parse_error(body: &str) -> CheckpointError {
        Checkpoint::parse_body(body).expect_err("the body must be rejected")
    }

    fn is_invalid_signature(result: Result<Checkpoint, CheckpointError>) -> bool {
        matches!(result, Err(CheckpointError::InvalidSignature { .. }))
    }

    fn is_no_signature_by_key(result: Result<Checkpoint, CheckpointError>) -> bool {
        matches!(result, Err(CheckpointError::NoSignatureByKey { .. }))
    }

    #[test]
    fn body_matches_golden_text() {
        assert_eq!(golden_checkpoint().body(), GOLDEN_BODY);
    }

    #[test]
    fn parse_body_reads_golden_text() {
        assert_eq!(Checkpoint::parse_body(GOLDEN_BODY), Ok(golden_checkpoint()));
    }

    #[test]
    fn timestamp_is_read_from_its_extension_line() {
        assert_eq!(golden_checkpoint().timestamp(), Some(1_735_689_600));
        assert_eq!(Checkpoint::new(ORIGIN, 1, sha256(&[b"x"])).timestamp(), None);
    }

    #[test]
    fn parses_empty_tree_with_size_zero() {
        let body = "audit.example.com/log/v1\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";
        let checkpoint = Checkpoint::parse_body(body).expect("valid");
        assert_eq!(checkpoint, Checkpoint::new(ORIGIN, 0, sha256(&[])));
        assert_eq!(checkpoint.body(), body);
    }

    #[test]
    fn parses_unknown_extension_lines_as_opaque() {
        let body = format!("{GOLDEN_BODY}vendor extension\n");
        let checkpoint = Checkpoint::parse_body(&body).expect("valid");
        assert_eq!(checkpoint.extensions, ["timestamp 1735689600", "vendor extension"]);
        assert_eq!(checkpoint.body(), body);
    }

    #[test]
    fn rejects_body_without_final_newline() {
        assert_eq!(parse_error(GOLDEN_BODY.trim_end_matches('\n')), CheckpointError::MissingFinalNewline);
    }

    #[test]
    fn rejects_body_without_root_line() {
        assert_eq!(parse_error("audit.example.com/log/v1\n1042\n"), CheckpointError::MissingLine);
    }

    #[test]
    fn rejects_empty_origin() {
        let body = GOLDEN_BODY.replacen(ORIGIN, "", 1);
        assert_eq!(parse_error(&body), CheckpointError::EmptyOrigin);
    }

    #[test]
    fn rejects_size_with_leading_zero() {
        let body = GOLDEN_BODY.replacen("\n1042\n", "\n01042\n", 1);
        assert_eq!(parse_error(&body), CheckpointError::InvalidSize("01042".into()));
    }

    #[test]
    fn rejects_size_with_sign_or_space() {
        for size in ["+1042", "-1", " 1042", "1042 ", "", "0x412"] {
            let body = GOLDEN_BODY.replacen("\n1042\n", &format!("\n{size}\n"), 1);
            assert_eq!(parse_error(&body), CheckpointError::InvalidSize(size.into()), "{size:?}");
        }
    }

    #[test]
    fn rejects_size_above_u64() {
        let body = GOLDEN_BODY.replacen("\n1042\n", "\n18446744073709551616\n", 1);
        assert!(matches!(parse_error(&body), CheckpointError::InvalidSize(_)));
    }

    #[test]
    fn rejects_root_of_31_bytes() {
        let short = BASE64.encode([1u8; 31]);
        let body = GOLDEN_BODY.replacen("fkO00iomjMuosSlAEwXbHIShbj7WsZhq/YIigYfwqR4=", &short, 1);
        assert_eq!(parse_error(&body), CheckpointError::InvalidRoot);
    }

    #[test]
    fn rejects_unpadded_root() {
        let body = GOLDEN_BODY.replacen("qR4=\n", "qR4\n", 1);
        assert_eq!(parse_error(&body), CheckpointError::InvalidRoot);
    }

    #[test]
    fn rejects_root_in_hex() {
        let hex_root = sha256(&[b"golden root"]).to_hex();
        let body = GOLDEN_BODY.replacen("fkO00iomjMuosSlAEwXbHIShbj7WsZhq/YIigYfwqR4=", &hex_root, 1);
        assert_eq!(parse_error(&body), CheckpointError::InvalidRoot);
    }

    #[test]
    fn rejects_empty_extension_line() {
        let body = format!("{GOLDEN_BODY}\nmore\n");
        assert_eq!(parse_error(&body), CheckpointError::EmptyExtension(1));
    }

    #[test]
    fn rejects_malformed_timestamp() {
        let body = GOLDEN_BODY.replacen("timestamp 1735689600", "timestamp 2025-01-01", 1);
        assert_eq!(parse_error(&body), CheckpointError::InvalidTimestamp("timestamp 2025-01-01".into()));
    }

    #[test]
    fn rejects_two_timestamps() {
        let body = format!("{GOLDEN_BODY}timestamp 1735689601\n");
        assert_eq!(parse_error(&body), CheckpointError::DuplicateTimestamp);
    }

    #[test]
    fn rejects_carriage_return_in_body() {
        let body = GOLDEN_BODY.replacen(ORIGIN, "audit.example.com/log/v1\r", 1);
        assert_eq!(parse_error(&body), CheckpointError::ControlCharacter);
    }

    #[test]
    fn validate_rejects_newline_in_origin() {
        let checkpoint = Checkpoint::new("a\n7", 1, sha256(&[b"x"]));
        assert_eq!(checkpoint.validate(), Err(CheckpointError::ControlCharacter));
    }

    #[test]
    fn key_id_is_sha256_prefix_of_spki() {
        let spki_der = spki(&signing_key(7));
        assert_eq!(hex::encode(&spki_der), GOLDEN_SPKI_HEX);
        assert_eq!(key_id_ecdsa(&spki_der), GOLDEN_KEY_ID);
    }

    #[test]
    fn signed_note_has_text_blank_line_and_signature_line() {
        let (signed, _) = signed_golden();
        let (text, signature_line) = signed.note.split_at(GOLDEN_BODY.len());
        assert_eq!(text, GOLDEN_BODY);
        let signature_line = signature_line.strip_prefix("\n\u{2014} audit.example.com/log/v1 ");
        let encoded = signature_line.expect("signature line").strip_suffix('\n').expect("newline");
        let decoded = BASE64.decode(encoded).expect("base64");
        assert_eq!(decoded[..4], GOLDEN_KEY_ID);
        assert_eq!(decoded[4..], signed.signature);
        assert_eq!(signed.key_id, GOLDEN_KEY_ID);
    }

    #[test]
    fn verifies_golden_note() {
        let note = format!("{GOLDEN_BODY}\n\u{2014} {ORIGIN} {GOLDEN_SIGNATURE}\n");
        let spki_der = hex::decode(GOLDEN_SPKI_HEX).expect("hex");
        assert_eq!(verify(&note, ORIGIN, &spki_der), Ok(golden_checkpoint()));
    }

    #[test]
    fn verifies_own_signature() {
        let (signed, spki) = signed_golden();
        assert_eq!(verify(&signed.note, ORIGIN, &spki), Ok(golden_checkpoint()));
    }

    #[test]
    fn verifies_published_rekor_checkpoint() {
        let material = REKOR_VERIFIER_KEY.splitn(3, '+').nth(2).expect("three parts");
        let spki_der = BASE64.decode(material).expect("base64")[1..].to_vec();
        let checkpoint = verify(REKOR_NOTE, "rekor.sigstore.dev", &spki_der).expect("verifies");
        assert_eq!((checkpoint.origin.as_str(), checkpoint.size), ("Rekor", 798_034));
    }

    #[test]
    fn verifier_key_matches_published_rekor_key() {
        let material = REKOR_VERIFIER_KEY.splitn(3, '+').nth(2).expect("three parts");
        let spki_der = BASE64.decode(material).expect("base64")[1..].to_vec();
        assert_eq!(verifier_key("rekor.sigstore.dev", &spki_der), Ok(REKOR_VERIFIER_KEY.into()));
    }

    #[test]
    fn ignores_signatures_by_other_keys() {
        let (signed, spki) = signed_golden();
        let witness = sign_with(&signing_key(9), "witness.example.com/w1", golden_checkpoint());
        let witness_line = witness.note.rsplit_once("\n\n").expect("blank line").1;
        let cosigned = format!("{}{witness_line}", signed.note);
        assert_eq!(verify(&cosigned, ORIGIN, &spki), Ok(golden_checkpoint()));
    }

    #[test]
    fn rejects_changed_origin() {
        assert!(is_invalid_signature(verify_altered(ORIGIN, "audit.example.com/log/v2")));
    }

    #[test]
    fn rejects_changed_size() {
        assert!(is_invalid_signature(verify_altered("\n1042\n", "\n1043\n")));
    }

    #[test]
    fn rejects_changed_root() {
        assert!(is_invalid_signature(verify_altered("fkO00", "gkO00")));
    }

    #[test]
    fn rejects_changed_extension() {
        assert!(is_invalid_signature(verify_altered("1735689600", "1735689601")));
    }

    #[test]
    fn rejects_added_extension() {
        assert!(is_invalid_signature(verify_altered("1735689600\n", "1735689600\nmore\n")));
    }

    #[test]
    fn rejects_signature_from_another_key_under_the_same_name_and_id() {
        let (signed, spki) = signed_golden();
        let forged = sign_with(&signing_key(9), ORIGIN, golden_checkpoint());
        let forged = assemble(golden_checkpoint(), ORIGIN, GOLDEN_KEY_ID, forged.signature).expect("valid input");
        assert_ne!(forged.note, signed.note);
        assert!(is_invalid_signature(verify(&forged.note, ORIGIN, &spki)));
    }

    #[test]
    fn rejects_note_signed_only_by_another_key() {
        let (_, spki) = signed_golden();
        let other = sign_with(&signing_key(9), ORIGIN, golden_checkpoint());
        assert!(is_no_signature_by_key(verify(&other.note, ORIGIN, &spki)));
    }

    #[test]
    fn rejects_wrong_key_name() {
        let (signed, spki) = signed_golden();
        assert!(is_no_signature_by_key(verify(&signed.note, "audit.example.com/other", &spki)));
    }

    #[test]
    fn rejects_unknown_key_id() {
        let (signed, spki) = signed_golden();
        let relabelled = assemble(golden_checkpoint(), ORIGIN, [0, 0, 0, 0], signed.signature).expect("valid");
        assert!(is_no_signature_by_key(verify(&relabelled.note, ORIGIN, &spki)));
    }

    #[test]
    fn rejects_missing_blank_line() {
        assert_eq!(verify_altered("\n\n\u{2014}", "\n\u{2014}"), Err(CheckpointError::MissingBlankLine));
    }

    #[test]
    fn rejects_signature_line_without_em_dash() {
        assert_eq!(verify_altered("\u{2014} ", "- "), Err(CheckpointError::MalformedSignatureLine(0)));
    }

    #[test]
    fn rejects_signature_line_without_final_newline() {
        let (signed, spki) = signed_golden();
        assert_eq!(
            verify(signed.note.trim_end_matches('\n'), ORIGIN, &spki),
            Err(CheckpointError::MalformedSignatureLine(0))
        );
    }

    #[test]
    fn rejects_signature_line_with_invalid_base64() {
        let (signed, spki) = signed_golden();
        let broken = format!("{}\u{2014} witness.example.com/w1 not*base64\n", signed.note);
        assert_eq!(verify(&broken, ORIGIN, &spki), Err(CheckpointError::MalformedSignatureLine(1)));
    }

    #[test]
    fn rejects_signature_of_four_bytes() {
        let (signed, spki) = signed_golden();
        let short = format!("{}\u{2014} witness.example.com/w1 AAAAAA==\n", signed.note);
        assert_eq!(verify(&short, ORIGIN, &spki), Err(CheckpointError::MalformedSignatureLine(1)));
    }

    #[test]
    fn rejects_more_than_100_signatures() {
        let (signed, spki) = signed_golden();
        let line = signed.note.rsplit_once("\n\n").expect("blank line").1;
        let crowded = format!("{}{}", signed.note, line.repeat(MAX_SIGNATURES));
        assert_eq!(verify(&crowded, ORIGIN, &spki), Err(CheckpointError::TooManySignatures));
    }

    #[test]
    fn rejects_carriage_return_in_note() {
        assert_eq!(verify_altered("\n\n", "\r\n\r\n"), Err(CheckpointError::ControlCharacter));
    }

    #[test]
    fn rejects_public_key_that_is_not_p256_spki() {
        let (signed, spki) = signed_golden();
        assert_eq!(verify(&signed.note, ORIGIN, &spki[1..]), Err(CheckpointError::InvalidPublicKey));
    }

    #[test]
    fn assemble_rejects_key_name_with_space() {
        let result = assemble(golden_checkpoint(), "audit log", GOLDEN_KEY_ID, vec![1]);
        assert_eq!(result, Err(CheckpointError::InvalidKeyName("audit log".into())));
    }

    #[test]
    fn assemble_rejects_key_name_with_plus() {
        let result = assemble(golden_checkpoint(), "audit+log", GOLDEN_KEY_ID, vec![1]);
        assert_eq!(result, Err(CheckpointError::InvalidKeyName("audit+log".into())));
    }

    #[test]
    fn pem_public_key_yields_the_original_der() {
        assert_eq!(public_key_der_from_pem(GOLDEN_PEM), Ok(spki(&signing_key(7))));
    }

    #[test]
    fn verifies_with_key_read_from_pem() {
        let (signed, _) = signed_golden();
        let spki_der = public_key_der_from_pem(GOLDEN_PEM).expect("valid PEM");
        assert_eq!(verify(&signed.note, ORIGIN, &spki_der), Ok(golden_checkpoint()));
    }

    #[test]
    fn pem_rejects_other_labels() {
        let relabelled = GOLDEN_PEM.replace("PUBLIC KEY", "CERTIFICATE");
        assert_eq!(public_key_der_from_pem(&relabelled), Err(CheckpointError::InvalidPublicKey));
    }
}
