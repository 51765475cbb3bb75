//! `strict-json.json`: the I-JSON rule every JSON input passes (docs/FORMATS.md, "Strict JSON
//! (I-JSON)"), as cases of JSON text with the verdict of `shared::chain::strict_json::check`.
//! The generator refuses to write a case whose verdict is not the one the case is meant to show.
//!
//! A raw noncharacter in an input is written as a `\u` escape of the file, so it can be seen; the
//! decoded input holds the raw character. (The file is therefore not strict JSON itself.)

use crate::{VectorFile, VECTORS_DIR};
use anyhow::{ensure, Context, Result};
use serde::Serialize;
use shared::chain::strict_json::{check, is_noncharacter, StrictJsonKind};

const DESCRIPTION: &str = "Strict JSON (I-JSON, RFC 7493), which every JSON input must be: request bodies, \
    export rows and the CSV event column, proof lines, manifests, and what the CLI reads. `input` is JSON text \
    (a string; check its UTF-8 bytes). The rule: (1) valid JSON text (RFC 8259) in UTF-8; (2) no object has two \
    members with the same name, compared after unescaping (`duplicate_member`, at the second one); (3a) an \
    integer literal (no fraction part, no exponent) lies within +-(2^53-1), -0 included (`unsafe_integer`); \
    (3b) any other number is exactly the IEEE 754 double nearest to it: its decimal value equals that of the \
    double's shortest round-trip digits, which RFC 8785 writes (`inexact_number`; overflow to infinity is one \
    too); (3c) a number that is not an integer literal and whose double is an integer of magnitude at least \
    2^53 and below 10^21 is `unsafe_integer` (RFC 8785 would write it as an integer literal outside the safe \
    range); when (3b) and (3c) both apply, `inexact_number`; (4) no string or member name holds a surrogate \
    code point (a lone escape such as \\ud800) or a noncharacter (U+FDD0 to U+FDEF, U+xFFFE and U+xFFFF of \
    every plane), escaped or raw (`invalid_string`). The first violation in reading order is the one reported. \
    `path` names where: member names joined by `.`, array indices as `[i]`, the root is the empty string \
    (`events[1].metadata.a[0].b`); a member name that breaks (4) is reported at the path of its object; \
    invalid JSON (`invalid_json`) has a null path.";

/// What a case must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Valid,
    Invalid(StrictJsonKind, Option<&'static str>),
}

use StrictJsonKind::*;
use Verdict::{Invalid, Valid};

/// `(name, input JSON text, verdict)`.
const CASES: &[(&str, &str, Verdict)] = &[
    // Member names.
    ("distinct_names", r#"{"action":"user.login","actor":{"id":"ada","type":"user"},"a":1,"A":2,"aa":3}"#, Valid),
    ("same_name_in_sibling_objects", r#"{"a":{"id":1},"b":{"id":2},"c":[{"id":3},{"id":4,"b":{"id":5}}]}"#, Valid),
    ("duplicate_at_root", r#"{"action":"a","action":"b"}"#, Invalid(DuplicateMember, Some("action"))),
    (
        "duplicate_with_equal_values",
        r#"{"action":"a","metadata":{"k":1,"k":1}}"#,
        Invalid(DuplicateMember, Some("metadata.k")),
    ),
    (
        "duplicate_in_nested_object",
        r#"{"action":"user.login","actor":{"id":"ada","type":"user","id":"eve"}}"#,
        Invalid(DuplicateMember, Some("actor.id")),
    ),
    (
        "duplicate_inside_array",
        r#"{"events":[{"action":"a"},{"action":"b","action":"c"}]}"#,
        Invalid(DuplicateMember, Some("events[1].action")),
    ),
    ("duplicate_in_array_at_root", r#"[{"x":1},{"x":1,"x":2}]"#, Invalid(DuplicateMember, Some("[1].x"))),
    (
        "duplicate_deep",
        r#"{"events":[{"action":"a"},{"action":"b","metadata":{"a":[{"b":1,"c":2,"b":3}]}}]}"#,
        Invalid(DuplicateMember, Some("events[1].metadata.a[0].b")),
    ),
    ("duplicate_after_unescaping", r#"{"a":1,"\u0061":2}"#, Invalid(DuplicateMember, Some("a"))),
    ("duplicate_after_unescaping_non_ascii", r#"{"é":1,"\u00e9":2}"#, Invalid(DuplicateMember, Some("é"))),
    // Integer literals.
    ("max_safe_integer", r#"{"n":9007199254740991}"#, Valid),
    ("min_safe_integer", r#"{"n":-9007199254740991}"#, Valid),
    ("negative_zero", r#"{"n":-0}"#, Valid),
    ("small_integers", "[0,1,-1,100,1000000]", Valid),
    ("integer_2_pow_53", r#"{"n":9007199254740992}"#, Invalid(UnsafeInteger, Some("n"))),
    ("integer_minus_2_pow_53", r#"{"n":-9007199254740992}"#, Invalid(UnsafeInteger, Some("n"))),
    ("integer_2_pow_53_plus_1", r#"{"n":9007199254740993}"#, Invalid(UnsafeInteger, Some("n"))),
    ("integer_2_pow_64", r#"{"metadata":{"n":18446744073709551616}}"#, Invalid(UnsafeInteger, Some("metadata.n"))),
    ("integer_10_pow_20", r#"{"metadata":{"n":100000000000000000000}}"#, Invalid(UnsafeInteger, Some("metadata.n"))),
    ("integer_2_pow_64_at_root", "18446744073709551616", Invalid(UnsafeInteger, Some(""))),
    // Other numbers.
    ("fraction_0_1", r#"{"x":0.1}"#, Valid),
    ("fraction_1_0", r#"{"x":1.0}"#, Valid),
    ("fraction_with_trailing_zero", r#"{"x":1.50}"#, Valid),
    ("negative_zero_fraction", r#"{"x":-0.0}"#, Valid),
    ("exponent_upper_case", r#"{"x":1E2}"#, Valid),
    ("exponent_1e21", r#"{"x":1e21}"#, Valid),
    ("exponent_minus_1e21", r#"{"x":-1e21}"#, Valid),
    ("smallest_subnormal", r#"{"x":5e-324}"#, Valid),
    ("largest_double", r#"{"x":1.7976931348623157e308}"#, Valid),
    ("shortest_digits_of_a_third", r#"{"x":333333333.3333333}"#, Valid),
    ("safe_integer_written_as_fraction", r#"{"x":9007199254740991.0}"#, Valid),
    ("zero_with_large_exponent", r#"{"x":0e400}"#, Valid),
    ("rounds_0_10000000000000001", r#"{"x":0.10000000000000001}"#, Invalid(InexactNumber, Some("x"))),
    ("rounds_333333333_33333329", r#"{"x":333333333.33333329}"#, Invalid(InexactNumber, Some("x"))),
    ("rounds_1_00000000000000001", r#"{"x":1.00000000000000001}"#, Invalid(InexactNumber, Some("x"))),
    ("overflow_1e400", r#"{"x":1e400}"#, Invalid(InexactNumber, Some("x"))),
    ("overflow_minus_1e400", r#"{"x":-1e400}"#, Invalid(InexactNumber, Some("x"))),
    ("underflow_1e_minus_400", r#"{"x":1e-400}"#, Invalid(InexactNumber, Some("x"))),
    ("exponent_1e20", r#"{"x":1e20}"#, Invalid(UnsafeInteger, Some("x"))),
    ("fraction_2_pow_53", r#"{"x":9007199254740992.0}"#, Invalid(UnsafeInteger, Some("x"))),
    ("exponent_minus_1e16", r#"{"x":-1E16}"#, Invalid(UnsafeInteger, Some("x"))),
    ("rounds_and_unsafe_is_inexact", r#"{"x":9007199254740993.0}"#, Invalid(InexactNumber, Some("x"))),
    // Strings.
    ("surrogate_pair", r#"{"s":"\ud83d\ude00"}"#, Valid),
    ("non_ascii_escaped_and_raw", r#"{"s":"\u00e9 é \u65e5 😀"}"#, Valid),
    ("next_to_noncharacters", r#"{"s":"\ufdcf \ufdf0 \ufffd \ud83f\udffd","\ufffd":1}"#, Valid),
    ("nul_escape", r#"{"s":"\u0000"}"#, Valid),
    ("lone_high_surrogate", r#"{"s":"\ud800"}"#, Invalid(InvalidString, Some("s"))),
    ("lone_low_surrogate", r#"{"s":"\udc00"}"#, Invalid(InvalidString, Some("s"))),
    ("high_surrogate_then_other_escape", r#"{"s":["ok","\ud83d\u0041"]}"#, Invalid(InvalidString, Some("s[1]"))),
    ("reversed_surrogate_pair", r#"{"s":"\ude00\ud83d"}"#, Invalid(InvalidString, Some("s"))),
    ("lone_surrogate_in_member_name", r#"{"m":{"\ud800":1}}"#, Invalid(InvalidString, Some("m"))),
    ("noncharacter_escaped_ffff", r#"{"s":"\uffff"}"#, Invalid(InvalidString, Some("s"))),
    ("noncharacter_escaped_fffe", r#"{"s":"a\ufffeb"}"#, Invalid(InvalidString, Some("s"))),
    ("noncharacter_raw_fdd0", "{\"s\":\"\u{fdd0}\"}", Invalid(InvalidString, Some("s"))),
    ("noncharacter_raw_fdef", "{\"s\":\"x\u{fdef}\"}", Invalid(InvalidString, Some("s"))),
    ("noncharacter_supplementary_1ffff", r#"{"s":"\ud83f\udfff"}"#, Invalid(InvalidString, Some("s"))),
    ("noncharacter_raw_10ffff", "{\"s\":\"\u{10ffff}\"}", Invalid(InvalidString, Some("s"))),
    ("noncharacter_in_member_name", r#"{"m":{"\ufdd0":1}}"#, Invalid(InvalidString, Some("m"))),
    // Syntax.
    ("syntax_trailing_comma", r#"{"a":1,}"#, Invalid(InvalidJson, None)),
    ("syntax_unquoted_name", "{a:1}", Invalid(InvalidJson, None)),
    ("syntax_leading_zero", "[01]", Invalid(InvalidJson, None)),
    ("syntax_nan", "[NaN]", Invalid(InvalidJson, None)),
    ("syntax_truncated", r#"{"a":"#, Invalid(InvalidJson, None)),
    ("syntax_two_texts", "{} {}", Invalid(InvalidJson, None)),
];

#[derive(Serialize)]
struct File {
    description: &'static str,
    cases: Vec<Case>,
}

#[derive(Serialize)]
struct Case {
    name: &'static str,
    input: &'static str,
    valid: bool,
    #[serde(flatten)]
    fault: Option<Fault>,
}

#[derive(Serialize)]
struct Fault {
    error: &'static str,
    path: Option<&'static str>,
}

pub fn generate() -> Result<Vec<VectorFile>> {
    let mut cases = Vec::with_capacity(CASES.len());
    for &(name, input, intended) in CASES {
        let got = check(input.as_bytes()).err().map(|e| (e.kind, e.path));
        let want = match intended {
            Valid => None,
            Invalid(kind, path) => Some((kind, path.map(str::to_owned))),
        };
        ensure!(got == want, "case {name}: meant to give {want:?}, the check gave {got:?}");
        if intended == Valid {
            serde_json::from_str::<serde_json::Value>(input).with_context(|| format!("case {name} parses"))?;
        }
        let fault = match intended {
            Valid => None,
            Invalid(kind, path) => Some(Fault { error: kind.as_str(), path }),
        };
        cases.push(Case { name, input, valid: intended == Valid, fault });
    }
    let file = File { description: DESCRIPTION, cases };
    let text = serde_json::to_string_pretty(&file).context("serialising strict-json.json")?;
    let mut bytes = escape_noncharacters(&text).into_bytes();
    bytes.push(b'\n');
    Ok(vec![VectorFile { path: format!("{VECTORS_DIR}/strict-json.json"), bytes }])
}

/// `text` with each noncharacter written as `\u` escapes (UTF-16 units, as JSON spells them);
/// serde_json writes them raw, where they cannot be seen. They occur only inside strings.
fn escape_noncharacters(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_noncharacter(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}
