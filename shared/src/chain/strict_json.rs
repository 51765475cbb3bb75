//! Strict JSON: the I-JSON profile (RFC 7493) that RFC 8785 canonicalisation assumes, checked on
//! raw bytes before anything parses them (docs/FORMATS.md, "Strict JSON (I-JSON)").
//!
//! A parser keeps one of two members with the same name and rounds a number to the nearest IEEE
//! 754 double, each language in its own way; the canonical bytes, and so every digest, then
//! depend on the reader. [`check`] refuses such input instead, so what is hashed is exactly what
//! was sent. The rule:
//!
//! 1. valid JSON text (RFC 8259) in UTF-8;
//! 2. no object has two members with the same name, compared after unescaping
//!    ([`StrictJsonKind::DuplicateMember`], at the second one);
//! 3. an integer literal (no fraction, no exponent) lies within +-(2^53-1)
//!    ([`StrictJsonKind::UnsafeInteger`]); any other number is exactly the double nearest to it,
//!    that is its decimal value equals that of the double's shortest round-trip digits, which
//!    RFC 8785 writes ([`StrictJsonKind::InexactNumber`]; an overflow is one too); and a
//!    non-integer literal whose double is an integer of magnitude 2^53 to 10^21 (exclusive) is
//!    an [`StrictJsonKind::UnsafeInteger`], since RFC 8785 writes it as an integer literal outside
//!    the safe range. When both of the last two apply, the number is inexact;
//! 4. no string or member name holds a surrogate code point (a lone `\ud800` escape) or a Unicode
//!    noncharacter (U+FDD0 to U+FDEF, U+xFFFE and U+xFFFF of every plane), escaped or raw
//!    ([`StrictJsonKind::InvalidString`]).
//!
//! Paths are member names joined by `.` and array indices as `[i]`, the root being the empty
//! string (`events[3].metadata.list[2]`), as the event validation names fields. A member name
//! that breaks rule 4 is reported at the path of its object. Syntax errors have no path.
//!
//! Nesting deeper than [`MAX_DEPTH`] is refused as invalid JSON: it is serde_json's limit, so
//! nothing deeper would parse afterwards anyway, and the walk here stays within a small stack.
//! The tokenising is `jiter`'s; this module adds only the rule.

use jiter::{Jiter, JiterError, JiterErrorType, JsonErrorType, Peek};
use std::collections::HashSet;
use std::fmt;

/// The largest integer magnitude every JSON implementation represents exactly: 2^53 - 1.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
/// The deepest nesting of arrays and objects accepted: serde_json refuses a 128th level.
pub const MAX_DEPTH: usize = 127;
/// Numbers longer than this are shortened in messages.
const MAX_SHOWN_NUMBER_CHARS: usize = 40;

/// Why input is not strict JSON; [`StrictJsonKind::as_str`] is the name the test vectors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictJsonKind {
    InvalidJson,
    DuplicateMember,
    UnsafeInteger,
    InexactNumber,
    InvalidString,
}

impl StrictJsonKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StrictJsonKind::InvalidJson => "invalid_json",
            StrictJsonKind::DuplicateMember => "duplicate_member",
            StrictJsonKind::UnsafeInteger => "unsafe_integer",
            StrictJsonKind::InexactNumber => "inexact_number",
            StrictJsonKind::InvalidString => "invalid_string",
        }
    }
}

impl fmt::Display for StrictJsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first violation found, reading from the start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StrictJsonError {
    pub kind: StrictJsonKind,
    /// Where, in the format above; None for invalid JSON.
    pub path: Option<String>,
    /// A sentence naming the path, without a trailing period.
    pub message: String,
}

impl StrictJsonError {
    fn at(kind: StrictJsonKind, path: &str, message: String) -> Self {
        StrictJsonError { kind, path: Some(path.to_owned()), message }
    }
}

/// Checks that `bytes` are one JSON text that follows the rule above.
pub fn check(bytes: &[u8]) -> Result<(), StrictJsonError> {
    let mut jiter = Jiter::new(bytes);
    let mut path = String::new();
    let walked = match jiter.peek() {
        Ok(peek) => walk(&mut jiter, peek, &mut path, 0),
        Err(e) => Err(Fault::Syntax(e)),
    };
    let finished = walked.and_then(|()| jiter.finish().map_err(Fault::Syntax));
    finished.map_err(|fault| match fault {
        Fault::Syntax(e) => syntax_error(&e, &jiter, &path, false),
        Fault::NameSyntax(e) => syntax_error(&e, &jiter, &path, true),
        Fault::Rule(e) => e,
    })
}

/// What stopped the walk; a syntax error is described only at the end, with the position.
enum Fault {
    Syntax(JiterError),
    /// A syntax error while reading a member name (or what should be one).
    NameSyntax(JiterError),
    Rule(StrictJsonError),
}

impl From<JiterError> for Fault {
    fn from(e: JiterError) -> Self {
        Fault::Syntax(e)
    }
}

/// Where a path points, for messages.
fn at(path: &str) -> String {
    if path.is_empty() {
        "at the root".into()
    } else {
        format!("at {path}")
    }
}

fn syntax_error(e: &JiterError, jiter: &Jiter<'_>, path: &str, name: bool) -> StrictJsonError {
    // jiter refuses a lone surrogate escape while it decodes the string, so that violation of
    // rule 4 arrives as a tokenising error, with `path` still pointing at the string's place.
    let surrogate = matches!(
        &e.error_type,
        JiterErrorType::JsonError(
            JsonErrorType::LoneLeadingSurrogateInHexEscape | JsonErrorType::UnexpectedEndOfHexEscape
        )
    );
    if surrogate {
        let what =
            if name { format!("a member name of the object {}", at(path)) } else { format!("string {}", at(path)) };
        return StrictJsonError::at(
            StrictJsonKind::InvalidString,
            path,
            format!("{what} holds a lone surrogate escape (\\ud800 to \\udfff without its pair)"),
        );
    }
    StrictJsonError {
        kind: StrictJsonKind::InvalidJson,
        path: None,
        message: format!("not valid JSON: {}", e.description(jiter)),
    }
}

fn walk(jiter: &mut Jiter<'_>, peek: Peek, path: &mut String, depth: usize) -> Result<(), Fault> {
    match peek {
        Peek::Null => Ok(jiter.known_null()?),
        Peek::True | Peek::False => Ok(jiter.known_bool(peek).map(drop)?),
        Peek::String => {
            let text = jiter.known_str()?;
            check_string(text).map_err(|c| {
                Fault::Rule(StrictJsonError::at(
                    StrictJsonKind::InvalidString,
                    path,
                    format!("string {} holds the noncharacter {}", at(path), code_point(c)),
                ))
            })
        }
        Peek::Array | Peek::Object if depth >= MAX_DEPTH => Err(Fault::Rule(StrictJsonError {
            kind: StrictJsonKind::InvalidJson,
            path: None,
            message: format!("not valid JSON: arrays and objects nest deeper than {MAX_DEPTH} levels"),
        })),
        Peek::Array => {
            let mut next = jiter.known_array()?;
            let mut index = 0usize;
            while let Some(peek) = next {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                walk(jiter, peek, path, depth + 1)?;
                path.truncate(len);
                next = jiter.array_step()?;
                index += 1;
            }
            Ok(())
        }
        Peek::Object => {
            let mut names: HashSet<String> = HashSet::new();
            let mut next = jiter.known_object().map_err(Fault::NameSyntax)?.map(str::to_owned);
            while let Some(name) = next {
                if let Err(c) = check_string(&name) {
                    let message =
                        format!("a member name of the object {} holds the noncharacter {}", at(path), code_point(c));
                    return Err(Fault::Rule(StrictJsonError::at(StrictJsonKind::InvalidString, path, message)));
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&name);
                if names.contains(&name) {
                    let message = format!("duplicate member name {name:?} {}", at(path));
                    return Err(Fault::Rule(StrictJsonError::at(StrictJsonKind::DuplicateMember, path, message)));
                }
                let peek = jiter.peek()?;
                walk(jiter, peek, path, depth + 1)?;
                path.truncate(len);
                names.insert(name);
                // A name that fails to decode (a lone surrogate) is reported at the object.
                next = jiter.next_key().map_err(Fault::NameSyntax)?.map(str::to_owned);
            }
            Ok(())
        }
        _ if peek.is_num() => {
            let literal = jiter.next_number_bytes()?;
            // The bytes passed the JSON number grammar, which is ASCII.
            let literal = std::str::from_utf8(literal).unwrap_or_default();
            check_number(literal, path).map_err(Fault::Rule)
        }
        // Anything else is not the start of a value; let the tokeniser say so.
        _ => Ok(jiter.known_skip(peek)?),
    }
}

/// The first noncharacter in `text`, if any. A `&str` cannot hold a surrogate.
fn check_string(text: &str) -> Result<(), char> {
    match text.chars().find(|&c| is_noncharacter(c)) {
        Some(c) => Err(c),
        None => Ok(()),
    }
}

/// U+FDD0 to U+FDEF, and the last two code points of every plane (Unicode section 23.7).
pub fn is_noncharacter(c: char) -> bool {
    let n = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&n) || n & 0xFFFE == 0xFFFE
}

fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

fn shown(literal: &str) -> String {
    if literal.len() <= MAX_SHOWN_NUMBER_CHARS {
        literal.to_owned()
    } else {
        format!("{}... ({} characters)", &literal[..MAX_SHOWN_NUMBER_CHARS - 8], literal.len())
    }
}

/// Rule 3 for one number literal, which has passed the JSON grammar.
fn check_number(literal: &str, path: &str) -> Result<(), StrictJsonError> {
    let unsafe_integer = |message: String| StrictJsonError::at(StrictJsonKind::UnsafeInteger, path, message);
    let integer_literal = !literal.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
    if integer_literal {
        let digits = literal.strip_prefix('-').unwrap_or(literal);
        // 2^53 - 1 has 16 digits; the grammar allows no leading zeros.
        let safe = digits.len() <= 16 && digits.parse::<u64>().is_ok_and(|n| n <= MAX_SAFE_INTEGER);
        if !safe {
            return Err(unsafe_integer(format!(
                "integer {} {} is outside +-(2^53-1); send it as a string",
                shown(literal),
                at(path)
            )));
        }
        return Ok(());
    }
    // Rust's parse rounds correctly, to the nearest double (ties to even), whatever the length.
    let value: f64 = literal.parse().unwrap_or(f64::INFINITY);
    if !value.is_finite() {
        return Err(StrictJsonError::at(
            StrictJsonKind::InexactNumber,
            path,
            format!(
                "number {} {} is beyond the range of an IEEE 754 double; send it as a string",
                shown(literal),
                at(path)
            ),
        ));
    }
    // `{:e}` writes the shortest digits that read back as the same double, as RFC 8785 does.
    if decimal(literal) != decimal(&format!("{value:e}")) {
        return Err(StrictJsonError::at(
            StrictJsonKind::InexactNumber,
            path,
            format!(
                "number {} {} is not exactly an IEEE 754 double (the nearest is {}); send it as a string",
                shown(literal),
                at(path),
                nearest(value)
            ),
        ));
    }
    let magnitude = value.abs();
    if value.fract() == 0.0 && (9_007_199_254_740_992.0..1e21).contains(&magnitude) {
        return Err(unsafe_integer(format!(
            "number {} {} is the integer {value:.0}, outside +-(2^53-1); send it as a string",
            shown(literal),
            at(path)
        )));
    }
    Ok(())
}

/// A double in its shortest digits, positional where RFC 8785 writes it so.
fn nearest(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 || (1e-6..1e21).contains(&magnitude) {
        format!("{value}")
    } else {
        format!("{value:e}")
    }
}

/// The exact decimal value of a number in JSON or `{:e}` spelling, normalised: the significant
/// digits without leading or trailing zeros, the sign, and the power of ten of the last digit.
/// Zero, of either sign, is `("", false, 0)`.
fn decimal(text: &str) -> (String, bool, i64) {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], &unsigned[i + 1..]),
        None => (unsigned, ""),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = format!("{whole}{fraction}").trim_start_matches('0').to_owned();
    let significant = digits.trim_end_matches('0');
    if significant.is_empty() {
        return (String::new(), false, 0);
    }
    let trailing_zeros = (digits.len() - significant.len()) as i64;
    (significant.to_owned(), negative, exponent_value(exponent) - fraction.len() as i64 + trailing_zeros)
}

/// An exponent's value, saturated far beyond any double's range (a number with a nonzero digit
/// and such an exponent overflows or underflows, so it is inexact either way).
fn exponent_value(text: &str) -> i64 {
    const LIMIT: i64 = 1 << 40;
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = digits.bytes().fold(0i64, |n, d| (n * 10 + i64::from(d - b'0')).min(LIMIT));
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `input` and gives the kind and path, or None for accepted input.
    fn verdict(input: &str) -> Option<(StrictJsonKind, Option<String>)> {
        check(input.as_bytes()).err().map(|e| (e.kind, e.path))
    }

    fn refused(input: &str) -> (StrictJsonKind, String) {
        match check(input.as_bytes()) {
            Err(StrictJsonError { kind, path: Some(path), .. }) => (kind, path),
            other => panic!("{input}: expected a refusal with a path, got {other:?}"),
        }
    }

    fn message(input: &str) -> String {
        check(input.as_bytes()).err().map(|e| e.message).unwrap_or_else(|| panic!("{input} is refused"))
    }

    use StrictJsonKind::*;

    #[test]
    fn accepts_strict_json_of_every_kind() {
        let accepted = [
            "{}",
            "[]",
            "null",
            " true ",
            "\"text\"",
            r#"{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}"#,
            r#"{"action":"user.login","actor":{"id":"ada","type":"user"},"metadata":{"n":9007199254740991}}"#,
            "[9007199254740991,-9007199254740991,0,-0,1,-1]",
            "[0.1,1.50,1E2,1e21,-1e21,1e300,5e-324,1.7976931348623157e308,2.5e-7]",
            "[1.0,-0.0,0e400,0.000,100,3.14159]",
            "[9007199254740991.0,1e15,2251799813685248.5]",
            r#"["\ud83d\ude00","\u00e9","é","\ufffd","\u0000"]"#,
            r#"{"😀":"\ufdcf","\ufdf0":"\ufffd"}"#,
            "\n [ 1 , 2 ] \r\n",
        ];
        for input in accepted {
            assert_eq!(verdict(input), None, "{input}");
        }
    }

    #[test]
    fn rejects_a_duplicate_member_at_the_root() {
        assert_eq!(refused(r#"{"action":"a","action":"b"}"#), (DuplicateMember, "action".into()));
    }

    #[test]
    fn rejects_a_duplicate_member_in_a_nested_object() {
        assert_eq!(refused(r#"{"actor":{"id":"a","type":"user","id":"b"}}"#), (DuplicateMember, "actor.id".into()));
    }

    #[test]
    fn rejects_a_duplicate_member_inside_an_array() {
        let input = r#"{"events":[{"action":"a"},{"action":"b","metadata":{"a":[{"b":1,"b":2}]}}]}"#;
        assert_eq!(refused(input), (DuplicateMember, "events[1].metadata.a[0].b".into()));
    }

    #[test]
    fn rejects_names_equal_after_unescaping() {
        assert_eq!(refused(r#"{"a":1,"\u0061":2}"#), (DuplicateMember, "a".into()));
        assert_eq!(refused(r#"{"é":1,"\u00e9":2}"#), (DuplicateMember, "é".into()));
    }

    #[test]
    fn accepts_the_same_name_in_sibling_objects() {
        assert_eq!(verdict(r#"[{"a":1},{"a":2},{"b":{"a":3}}]"#), None);
    }

    #[test]
    fn names_a_duplicate_in_the_message() {
        assert_eq!(message(r#"{"action":"a","action":"b"}"#), r#"duplicate member name "action" at action"#);
    }

    #[test]
    fn rejects_integer_literals_outside_the_safe_range() {
        for literal in [
            "9007199254740992",
            "9007199254740993",
            "-9007199254740992",
            "18446744073709551616",
            "100000000000000000000",
        ] {
            assert_eq!(refused(&format!("{{\"n\":{literal}}}")), (UnsafeInteger, "n".into()), "{literal}");
        }
    }

    #[test]
    fn names_an_unsafe_integer_and_the_remedy_in_the_message() {
        assert_eq!(
            message(r#"{"metadata":{"n":18446744073709551616}}"#),
            "integer 18446744073709551616 at metadata.n is outside +-(2^53-1); send it as a string"
        );
    }

    #[test]
    fn rejects_a_non_integer_literal_whose_value_is_an_unsafe_integer() {
        for literal in ["1e20", "9007199254740992.0", "-1E16", "123456789012345680000.0"] {
            assert_eq!(refused(&format!("[{literal}]")), (UnsafeInteger, "[0]".into()), "{literal}");
        }
        assert_eq!(
            message("[1e20]"),
            "number 1e20 at [0] is the integer 100000000000000000000, outside +-(2^53-1); send it as a string"
        );
    }

    #[test]
    fn rejects_numbers_that_round() {
        for literal in
            ["0.10000000000000001", "333333333.33333329", "1.00000000000000001", "1e-400", "9007199254740993.0"]
        {
            assert_eq!(refused(&format!("{{\"x\":{literal}}}")), (InexactNumber, "x".into()), "{literal}");
        }
        assert_eq!(
            message(r#"{"x":0.10000000000000001}"#),
            "number 0.10000000000000001 at x is not exactly an IEEE 754 double (the nearest is 0.1); send it as a string"
        );
    }

    #[test]
    fn rejects_numbers_beyond_the_double_range() {
        assert_eq!(refused("[1e400]"), (InexactNumber, "[0]".into()));
        assert_eq!(refused("[-1.5e309]"), (InexactNumber, "[0]".into()));
        assert_eq!(refused("[1e99999999999999999999999]"), (InexactNumber, "[0]".into()));
    }

    #[test]
    fn shortens_a_long_number_in_the_message() {
        let long = format!("1{}", "0".repeat(1000));
        let text = message(&long);
        assert!(text.len() < 120 && text.contains("(1001 characters)") && text.contains("at the root"), "{text}");
    }

    #[test]
    fn rejects_lone_surrogate_escapes() {
        assert_eq!(refused(r#"{"s":"\ud800"}"#), (InvalidString, "s".into()));
        assert_eq!(refused(r#"{"s":"\udc00"}"#), (InvalidString, "s".into()));
        assert_eq!(refused(r#"{"s":"x\ud83dy"}"#), (InvalidString, "s".into()));
        assert_eq!(refused(r#"{"s":"\ud83d\u0041"}"#), (InvalidString, "s".into()));
        assert_eq!(refused(r#"{"s":["\ud83d\n"]}"#), (InvalidString, "s[0]".into()));
    }

    #[test]
    fn rejects_noncharacters_escaped_or_raw() {
        assert_eq!(refused(r#"{"s":"\uffff"}"#), (InvalidString, "s".into()));
        assert_eq!(refused("{\"s\":\"\u{fdd0}\"}"), (InvalidString, "s".into()));
        assert_eq!(refused("{\"s\":\"a\u{fdef}\"}"), (InvalidString, "s".into()));
        assert_eq!(refused(r#"{"s":"\ud83f\udffe"}"#), (InvalidString, "s".into()));
        assert_eq!(refused("[\"\u{10ffff}\"]"), (InvalidString, "[0]".into()));
        assert_eq!(message(r#"{"s":"\uffff"}"#), "string at s holds the noncharacter U+FFFF");
    }

    #[test]
    fn reports_an_invalid_member_name_at_its_object() {
        assert_eq!(refused(r#"{"a":{"\ud800":1}}"#), (InvalidString, "a".into()));
        assert_eq!(refused(r#"{"a":{"\ufffe":1}}"#), (InvalidString, "a".into()));
        assert_eq!(refused(r#"{"\ufffe":1}"#), (InvalidString, String::new()));
        assert_eq!(
            message(r#"{"a":[{"\ud800":1}]}"#),
            "a member name of the object at a[0] holds a lone surrogate escape (\\ud800 to \\udfff without its pair)"
        );
        assert_eq!(message(r#"{"\ufffe":1}"#), "a member name of the object at the root holds the noncharacter U+FFFE");
        assert_eq!(refused(r#"{"a":1,"b":{"\ud800":1}}"#), (InvalidString, "b".into()));
    }

    #[test]
    fn rejects_invalid_syntax_without_a_path() {
        let invalid = [
            "",
            "{",
            r#"{"a":1,}"#,
            "[1,]",
            "[01]",
            "[1.]",
            "[.5]",
            "[+1]",
            "[NaN]",
            "[Infinity]",
            "{'a':1}",
            "{\"a\":1} x",
            "{} {}",
            "\u{feff}{}",
            "[\"\u{1}\"]",
            r#"["\x"]"#,
            r#"["\ud800"#,
        ];
        for input in invalid {
            assert_eq!(verdict(input), Some((InvalidJson, None)), "{input:?}");
        }
        assert!(check(b"[\"\xff\"]").is_err_and(|e| e.kind == InvalidJson && e.path.is_none()));
    }

    #[test]
    fn locates_a_syntax_error_by_line_and_column() {
        assert_eq!(message("{\n\"a\":1,}"), "not valid JSON: trailing comma at line 2 column 7");
    }

    #[test]
    fn refuses_nesting_deeper_than_serde_json_reads() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(verdict(&ok), None);
        assert!(serde_json::from_str::<serde_json::Value>(&ok).is_ok(), "serde_json reads the deepest accepted");
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(verdict(&deep), Some((InvalidJson, None)));
        let very_deep = "[".repeat(1_000_000);
        assert_eq!(verdict(&very_deep), Some((InvalidJson, None)));
    }

    #[test]
    fn the_first_violation_in_reading_order_is_reported() {
        assert_eq!(refused(r#"{"a":1e400,"a":2}"#), (InexactNumber, "a".into()));
        assert_eq!(refused(r#"[{"a":1,"a":2},1e400]"#), (DuplicateMember, "[0].a".into()));
    }

    #[test]
    fn decimal_values_compare_exactly() {
        assert_eq!(decimal("1.50"), decimal("1.5e0"));
        assert_eq!(decimal("1E2"), decimal("1e2"));
        assert_eq!(decimal("100"), ("1".into(), false, 2));
        assert_eq!(decimal("-0.0"), decimal("0e0"));
        assert_eq!(decimal("0.00120e-3"), ("12".into(), false, -7));
        assert_ne!(decimal("0.10000000000000001"), decimal("1e-1"));
    }

    #[test]
    fn noncharacters_are_the_66_code_points() {
        let count = (0..=0x10FFFFu32).filter_map(char::from_u32).filter(|&c| is_noncharacter(c)).count();
        assert_eq!(count, 66);
        assert!(!is_noncharacter('\u{fffd}') && !is_noncharacter('\u{fdcf}') && !is_noncharacter('\u{fdf0}'));
    }
}
