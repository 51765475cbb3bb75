//! `auditlog send`, `query` and `tail` against a stub HTTP server on 127.0.0.1 that answers
//! canned JSON and records every request, so the tests see exactly what the CLI sent.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const API_KEY: &str = "alk_0123456789abcdef01234567_secretsecretsecret";

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: Value,
}

/// (status, extra headers, body): a JSON body, except that a top-level JSON string is sent as its
/// raw text (the downloads of the export test; no API response is a bare string).
type Reply = (u16, Vec<(&'static str, String)>, Value);

struct Stub {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Stub {
    /// Serves `reply(request, number)` (number counts from 0) on a fresh port.
    fn start(reply: impl Fn(&Request, usize) -> Reply + Send + 'static) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&mut stream) else { continue };
                let n = {
                    let mut seen = seen.lock().expect("lock");
                    seen.push(request.clone());
                    seen.len() - 1
                };
                let (status, headers, body) = reply(&request, n);
                let body = match body {
                    Value::String(raw) => raw,
                    json => json.to_string(),
                };
                let mut head = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                let _ = stream.write_all(format!("{head}\r\n{body}").as_bytes());
            }
        });
        Stub { url, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("lock").clone()
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), decode(v)))
        .collect();
    let body = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).ok()? };
    Some(Request { method, path: path.to_owned(), query, headers, body })
}

/// Percent-decoding of a query value (and + as space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("hex"));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("UTF-8")
}

fn appended(events: &Value) -> Value {
    let items: Vec<Value> = events
        .as_array()
        .map(|a| {
            a.iter()
                .enumerate()
                .map(|(i, _)| json!({"id": format!("0190f6e2-0000-7000-8000-{i:012}"), "seq": i}))
                .collect()
        })
        .unwrap_or_default();
    json!({"count": items.len(), "tree_size": items.len(), "events": items})
}

fn cli(stub: &Stub, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .args(args)
        .env("AUDIT_LOG_URL", &stub.url)
        .env("AUDIT_LOG_API_KEY", API_KEY)
        .output()
        .expect("run auditlog")
}

#[test]
fn send_retries_503_after_retry_after_with_the_same_idempotency_key() {
    let stub = Stub::start(|req, n| {
        if n == 0 {
            (503, vec![("retry-after", "1".into())], json!({"error": {"code": "unavailable", "message": "retry"}}))
        } else {
            (201, vec![], appended(&req.body["events"]))
        }
    });
    let started = Instant::now();
    let out = cli(&stub, &["send", r#"{"action":"user.login","actor":{"id":"ada"}}"#]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was not honoured");
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/events/batch"));
        assert_eq!(r.headers.get("authorization"), Some(&format!("Bearer {API_KEY}")));
        assert_eq!(r.body["events"][0]["action"], json!("user.login"));
    }
    let key = requests[0].headers.get("idempotency-key").expect("an Idempotency-Key");
    assert!(!key.is_empty());
    assert_eq!(requests[1].headers.get("idempotency-key"), Some(key));
    assert!(stdout(&out).contains("appended seq 0"), "{}", stdout(&out));
    assert!(!stdout(&out).contains(API_KEY) && !stderr(&out).contains(API_KEY), "the API key was printed");
}

#[test]
fn send_does_not_retry_400_and_says_why() {
    let stub = Stub::start(|_, _| {
        (
            400,
            vec![],
            json!({"error": {"code": "invalid_request", "message": "events[0].action: must start with a letter or digit"}}),
        )
    });
    let out = cli(&stub, &["send", "--idempotency-key", "k-1", r#"{"action":"-bad","actor":{"id":"ada"}}"#]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(stub.requests().len(), 1, "a 400 must not be retried");
    assert_eq!(stub.requests()[0].headers.get("idempotency-key").map(String::as_str), Some("k-1"));
    let err = stderr(&out);
    assert!(err.contains("400 invalid_request: events[0].action: must start with a letter or digit"), "{err}");
    assert!(!err.contains(API_KEY));
}

#[test]
fn send_refuses_events_that_are_not_strict_json_before_sending() {
    let stub = Stub::start(|req, _| (201, vec![], appended(&req.body["events"])));
    let dir = scratch("send-not-strict");
    let file = dir.join("events.jsonl");
    std::fs::write(
        &file,
        "{\"action\":\"a.b\",\"actor\":{\"id\":\"u\"}}\n{\"action\":\"a.b\",\"actor\":{\"id\":\"u\"},\"metadata\":{\"n\":18446744073709551616}}\n",
    )
    .expect("write");
    let out = cli(&stub, &["send", "--file", file.to_str().expect("path")]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("line 2: not strict JSON: integer 18446744073709551616 at metadata.n"),
        "{}",
        stderr(&out)
    );
    let out = cli(&stub, &["send", r#"{"action":"a.b","action":"c.d","actor":{"id":"u"}}"#]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains(r#"not strict JSON: duplicate member name "action" at action"#), "{}", stderr(&out));
    assert!(stub.requests().is_empty(), "nothing is sent");
}

#[test]
fn send_splits_json_lines_into_batches_of_1000_with_numbered_keys() {
    let stub = Stub::start(|req, _| (201, vec![], appended(&req.body["events"])));
    let dir = scratch("send-batches");
    let file = dir.join("events.jsonl");
    let lines: String = (0..1001).map(|i| format!("{{\"action\":\"a.b\",\"actor\":{{\"id\":\"u{i}\"}}}}\n")).collect();
    std::fs::write(&file, lines).expect("write");
    let out = cli(&stub, &["send", "--file", file.to_str().expect("path"), "--idempotency-key", "import"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body["events"].as_array().map(Vec::len), Some(1000));
    assert_eq!(requests[1].body["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(requests[1].body["events"][0]["actor"]["id"], json!("u1000"));
    let keys: Vec<_> = requests.iter().map(|r| r.headers.get("idempotency-key").cloned()).collect();
    assert_eq!(keys, vec![Some("import-1".to_owned()), Some("import-2".to_owned())]);
}

#[test]
fn send_signs_the_normalised_event_so_the_signature_verifies() {
    let stub = Stub::start(|req, _| (201, vec![], appended(&req.body["events"])));
    let dir = scratch("send-signed");
    let seed = [5u8; 32];
    let key_file = dir.join("publisher.key");
    std::fs::write(&key_file, hex::encode(seed)).expect("write");
    let out = cli(
        &stub,
        &[
            "send",
            r#"{"action":"invoice.pay","actor":{"id":"svc"},"metadata":{"amount":12.5}}"#,
            "--signing-key",
            key_file.to_str().expect("path"),
            "--key-id",
            "billing-1",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let sent = &stub.requests()[0].body["events"][0];
    assert_eq!(sent["signature"]["key_id"], json!("billing-1"));
    assert_eq!(sent["outcome"], json!("success"));
    assert!(sent["occurred_at"].is_string(), "{sent}");
    // The service's own check: parse, validate, verify over the canonical signing bytes.
    let event =
        shared::chain::event::parse_event_value(sent).expect("parses").validate(chrono::Utc::now()).expect("valid");
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    shared::chain::publisher::verify_publisher_signature(&event, &public).expect("the signature verifies");
}

fn page(seqs: std::ops::Range<u64>, next: Option<&str>) -> Value {
    let events: Vec<Value> = seqs
        .map(|seq| json!({"seq": seq, "received_at": "2026-11-24T10:00:00.500000Z", "event": {"action": format!("user.login.{seq}"), "actor": {"id": "ada"}, "outcome": "success"}}))
        .collect();
    json!({"events": events, "next_cursor": next})
}

#[test]
fn query_follows_next_cursor_until_the_limit() {
    let stub = Stub::start(|req, _| {
        let reply = match req.query.get("cursor").map(String::as_str) {
            None => page(0..2, Some("c1")),
            Some("c1") => page(2..4, Some("c2")),
            _ => page(4..6, Some("c3")),
        };
        (200, vec![], reply)
    });
    let out = cli(&stub, &["query", "--action", "user.*", "--order", "asc", "--limit", "5", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let seqs: Vec<u64> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON line")["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    let requests = stub.requests();
    let asked: Vec<(Option<String>, Option<String>)> =
        requests.iter().map(|r| (r.query.get("cursor").cloned(), r.query.get("limit").cloned())).collect();
    assert_eq!(
        asked,
        vec![(None, Some("5".into())), (Some("c1".into()), Some("3".into())), (Some("c2".into()), Some("1".into()))]
    );
    assert!(requests
        .iter()
        .all(|r| r.query.get("action").map(String::as_str) == Some("user.*") && r.path == "/v1/events"));

    let out = cli(&stub, &["query", "--limit", "2"]);
    assert_eq!(code(&out), 0);
    let table = stdout(&out);
    assert!(
        table.starts_with("     SEQ  RECEIVED_AT") && table.contains("user.login.1") && table.contains("ada"),
        "{table}"
    );
}

#[test]
fn query_stops_when_next_cursor_is_null() {
    let stub = Stub::start(|_, _| (200, vec![], page(0..3, None)));
    let out = cli(&stub, &["query", "--limit", "100", "--json"]);
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out).lines().count(), 3);
    assert_eq!(stub.requests().len(), 1);
}

#[test]
fn tail_starts_at_the_newest_and_polls_ascending_after_the_last_seen() {
    let stub = Stub::start(|req, _| {
        let reply = match (req.query.get("order").map(String::as_str), req.query.get("cursor")) {
            (Some("desc"), _) => page(3..4, Some("d")),
            (Some("asc"), Some(c))
                if *c
                    == shared::service::query::Cursor { order: shared::service::query::Order::Asc, last_seq: 3 }
                        .encode() =>
            {
                page(4..6, None)
            }
            _ => page(0..0, None),
        };
        (200, vec![], reply)
    });
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .args(["tail", "--interval", "0.2", "--json"])
        .env("AUDIT_LOG_URL", &stub.url)
        .env("AUDIT_LOG_API_KEY", API_KEY)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first: Value = serde_json::from_str(&lines.next().expect("a line").expect("read")).expect("JSON");
    let second: Value = serde_json::from_str(&lines.next().expect("a line").expect("read")).expect("JSON");
    // Wait for at least one further poll after the last seen event.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stub.requests().len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("kill");
    let _ = child.wait();
    assert_eq!((first["seq"].clone(), second["seq"].clone()), (json!(4), json!(5)));
    let requests = stub.requests();
    assert_eq!(requests[0].query.get("order").map(String::as_str), Some("desc"));
    let after_five = shared::service::query::Cursor { order: shared::service::query::Order::Asc, last_seq: 5 }.encode();
    assert!(requests.len() >= 4, "tail kept polling");
    assert_eq!(requests[2].query.get("cursor"), Some(&after_five), "the poll after seq 5 continues after it");
}

#[test]
fn export_requests_waits_downloads_and_verifies_the_bundle() {
    let bundle = bundle(shared::chain::export::DataFormat::Jsonl, false, &FILTERED);
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).expect("UTF-8");
    let (manifest, data, proof) = (text(&bundle.manifest), text(&bundle.data), text(&bundle.proof));
    let base = Arc::new(Mutex::new(String::new()));
    let url = base.clone();
    let status_polls = std::sync::atomic::AtomicUsize::new(0);
    let stub = Stub::start(move |req, _| {
        let base = url.lock().expect("lock").clone();
        let link = |name: &str| json!({"url": format!("{base}/dl/{name}?X-Amz-Signature=abc"), "expires_at": "2026-11-24T12:00:00Z"});
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/v1/exports") => (202, vec![], json!({"id": "e1", "status": "queued"})),
            ("GET", "/v1/exports/e1") if status_polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 => (
                200,
                vec![],
                json!({"id": "e1", "status": "running", "rows": 2, "tree_size": 13, "error": null, "download": null}),
            ),
            ("GET", "/v1/exports/e1") => (
                200,
                vec![],
                json!({"id": "e1", "status": "done", "rows": 4, "tree_size": 13, "error": null,
                    "download": {"data": link("data"), "proof": link("proof"), "manifest": link("manifest")}}),
            ),
            ("GET", "/dl/data") => (200, vec![], Value::String(data.clone())),
            ("GET", "/dl/proof") => (200, vec![], Value::String(proof.clone())),
            ("GET", "/dl/manifest") => (200, vec![], Value::String(manifest.clone())),
            _ => (404, vec![], json!({"error": {"code": "not_found", "message": "no such route"}})),
        }
    });
    *base.lock().expect("lock") = stub.url.clone();
    let out_dir = scratch("export-e2e");
    let key = verifier(7);
    let out = cli(
        &stub,
        &[
            "export",
            "--action",
            "user.*",
            "--format",
            "jsonl",
            "--out",
            out_dir.to_str().expect("path"),
            "--public-key",
            &key,
            "--poll",
            "0.1",
            "--json",
        ],
    );
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let v = json_out(&out);
    assert_eq!((v["valid"].clone(), v["rows"].clone()), (json!(true), json!(4)));
    assert_eq!(std::fs::read(out_dir.join("data.jsonl")).expect("data saved"), bundle.data);
    assert!(out_dir.join("proof.jsonl").is_file() && out_dir.join("manifest.json").is_file());
    let requests = stub.requests();
    assert_eq!(requests.iter().filter(|r| r.path == "/v1/exports/e1").count(), 2, "polled until done");
    assert_eq!(requests[0].body, json!({"format": "jsonl", "gzip": false, "filter": {"action": "user.*"}}));
    for r in requests.iter().filter(|r| r.path.starts_with("/dl/")) {
        assert!(!r.headers.contains_key("authorization"), "a presigned URL must be fetched without the API key");
    }
}
