//! Responses bounded by bytes as well as by count. A function's response reaches the client only
//! if the whole Lambda response event fits Lambda's synchronous payload limit (6 MB, 6,291,556
//! bytes in Lambda's own error message); past it the client gets API Gateway's 500 and nothing
//! else. A list that can grow is therefore cut by bytes here, and the caller either pages on from
//! where the cut fell (`GET /v1/events`: a short page with `next_cursor`) or says the list is
//! bounded (`GET /v1/exports`).

use serde::Serialize;

/// The bytes one response's list entries may take, as measured by [`embedded_len`]. 5 MiB
/// (5,242,880 bytes) leaves over 1 MB of the 6 MB limit for everything else in the response
/// event: `statusCode`, the headers, the envelope of the body (`{"events":[`, commas,
/// `next_cursor`), all of it at most a few kilobytes. The body is JSON, which `lambda_http` sends
/// as text (`isBase64Encoded: false`), so no base64 growth applies; a binary body would grow by
/// 4/3 and would need a budget of 4.5 MB.
pub const PAGE_BYTES: usize = 5 * 1024 * 1024;

/// The bytes `json` takes inside the Lambda response event, where the body is itself a JSON
/// string: every `"` and `\` gains an escaping backslash. serde_json writes no raw control
/// characters (it escapes them with a backslash, counted here) and leaves other text as UTF-8,
/// which the event keeps as is.
pub fn embedded_len(json: &[u8]) -> usize {
    json.len() + json.iter().filter(|b| matches!(b, b'"' | b'\\')).count()
}

/// The leading items that fit a byte budget, each serialised once.
#[derive(Debug)]
pub struct Fitted {
    /// The JSON of each item kept, in order.
    pub items: Vec<Vec<u8>>,
    /// Whether items were left out because the next one would pass the budget.
    pub cut: bool,
}

/// Serialises `items` in order while they fit `budget` (with one byte each for the comma between
/// items). The first item is always kept, whatever its size, so a paged listing always moves on;
/// one entry is at most 64 KiB of event plus its hashes, far under the budget.
pub fn fit<T: Serialize>(items: impl IntoIterator<Item = T>, budget: usize) -> Result<Fitted, serde_json::Error> {
    let mut kept = Vec::new();
    let mut used = 0usize;
    for item in items {
        let json = serde_json::to_vec(&item)?;
        let cost = embedded_len(&json) + 1;
        if !kept.is_empty() && used + cost > budget {
            return Ok(Fitted { items: kept, cut: true });
        }
        used += cost;
        kept.push(json);
    }
    Ok(Fitted { items: kept, cut: false })
}

/// The JSON object `{"<list>":[items...], ...rest}` from already serialised items.
pub fn object_with_list(list: &str, items: &[Vec<u8>], rest: serde_json::Map<String, serde_json::Value>) -> Vec<u8> {
    let mut body = Vec::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 256);
    body.push(b'{');
    body.extend_from_slice(serde_json::Value::String(list.to_owned()).to_string().as_bytes());
    body.extend_from_slice(b":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.push(b']');
    for (name, value) in rest {
        body.push(b',');
        body.extend_from_slice(serde_json::Value::String(name).to_string().as_bytes());
        body.push(b':');
        body.extend_from_slice(value.to_string().as_bytes());
    }
    body.push(b'}');
    body
}

/// A 200 response with a JSON body built by [`object_with_list`].
pub fn json_response(body: Vec<u8>) -> axum::response::Response {
    use axum::response::IntoResponse;
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn embedded_length_counts_the_escapes_a_json_string_adds() {
        for text in [json!({"a": "plain"}), json!({"q": "say \"hi\"", "path": "C:\\dir", "nl": "a\nb", "u": "é😀"})]
        {
            let body = serde_json::to_vec(&text).unwrap();
            let embedded = serde_json::to_vec(&Value::String(String::from_utf8(body.clone()).unwrap())).unwrap();
            // The embedded string has its two quotes on top of the escaped text.
            assert_eq!(embedded_len(&body), embedded.len() - 2, "{text}");
        }
    }

    #[test]
    fn fit_stops_before_the_item_that_would_pass_the_budget() {
        let items: Vec<String> = (0..10).map(|i| format!("{i:0>98}")).collect();
        // Each item is 100 bytes of JSON (98 digits and two quotes) plus two escapes, plus a comma.
        let fitted = fit(&items, 3 * 103 + 102).unwrap();
        assert_eq!(fitted.items.len(), 3);
        assert!(fitted.cut);
        let fitted = fit(&items, 10 * 103).unwrap();
        assert_eq!((fitted.items.len(), fitted.cut), (10, false));
        let fitted = fit(&items, 1).unwrap();
        assert_eq!((fitted.items.len(), fitted.cut), (1, true), "the first item is always kept");
    }

    #[test]
    fn the_object_is_the_json_of_its_parts() {
        let items = vec![b"{\"a\":1}".to_vec(), b"2".to_vec()];
        let mut rest = serde_json::Map::new();
        rest.insert("next_cursor".into(), Value::Null);
        let body: Value = serde_json::from_slice(&object_with_list("events", &items, rest)).unwrap();
        assert_eq!(body, json!({ "events": [{ "a": 1 }, 2], "next_cursor": null }));
        let empty: Value = serde_json::from_slice(&object_with_list("keys", &[], Default::default())).unwrap();
        assert_eq!(empty, json!({ "keys": [] }));
    }
}
