//! `canonical.json`: RFC 8785 (JCS) cases. Each input is JSON text, parsed with `serde_json` (the
//! workspace enables `float_roundtrip`, so every number parses to the nearest double) and
//! canonicalised with `shared::chain::canonical::jcs`, the one encoder behind every hash.

use crate::{json_file, VectorFile};
use anyhow::{Context, Result};
use serde::Serialize;
use shared::chain::canonical::jcs;

/// `(name, input JSON text)`.
const CASES: &[(&str, &str)] = &[
    // RFC 8785 section 3.2.3: members sorted by the UTF-16 code units of their names.
    (
        "rfc8785_sorting_example",
        r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#,
    ),
    // RFC 8785 section 3.2.2: whitespace removed, numbers and strings in canonical form.
    (
        "rfc8785_serialization_example",
        "{\n  \"numbers\": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],\n  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n  \"literals\": [null, true, false]\n}",
    ),
    (
        "keys_sorted_by_utf16_code_units_not_code_points",
        r#"{"\ue000":"private use U+E000","\ud83d\ude00":"U+1F600, UTF-16 D83D DE00, sorts first","a":1,"A":2,"aa":3,"":4,"\u00f6":5,"1":6,"\u0080":7,"\r":8}"#,
    ),
    ("nested_members_sorted_at_every_level", r#"{"b":{"d":1,"c":{"f":[{"h":1,"g":2}],"e":0}},"a":[{"z":1,"y":2}]}"#),
    (
        "string_escapes",
        r#"{"newline":"a\nb","tab":"a\tb","quote":"\"","backslash":"\\","unit_separator":"\u001f","control_characters":"\u0000\u0001\b\f\r\u007f","solidus":"\/","line_separator":"\u2028","paragraph_separator":"\u2029"}"#,
    ),
    (
        "unicode_passed_through",
        r#"{"escaped":"\u00e9\u20ac\ud83d\ude00\u65e5\u672c","literal":"é€😀日本","mixed":"caf\u00e9 ☕"}"#,
    ),
    ("insignificant_whitespace_removed", " {\n\t\"b\" : [ 1 ,\r\n 2 ] ,\n \"a\" : { } \n} "),
    ("empty_object", "{}"),
    ("empty_array", "[]"),
    ("empty_string", r#""""#),
    ("literals", "[true, false, null]"),
    ("nested_arrays_and_objects", r#"[[], [[]], {}, [{}], {"a": []}, [{"b": [null, {"c": [true]}]}]]"#),
    ("number_zero", "0"),
    ("number_negative_zero", "-0"),
    ("number_negative_zero_fraction", "-0.0"),
    ("number_one", "1"),
    ("number_minus_one", "-1"),
    ("number_one_and_a_half", "1.5"),
    ("number_trailing_zeros", "4.50"),
    ("number_integral_double", "1.0"),
    ("number_one_tenth", "0.1"),
    ("number_1e30", "1e30"),
    ("number_1e21", "1e21"),
    ("number_1e20", "1e20"),
    ("number_1E-7", "1E-7"),
    ("number_1e-7", "1e-7"),
    ("number_0.000001", "0.000001"),
    ("number_beyond_2_pow_64", "123456789012345680000"),
    ("number_max_safe_integer", "9007199254740991"),
    ("number_min_safe_integer", "-9007199254740991"),
    ("number_1.5e300", "1.5e300"),
    ("number_smallest_subnormal", "5e-324"),
    ("number_largest_double", "1.7976931348623157e308"),
    ("number_rounded_to_nearest_double", "333333333.33333329"),
    ("number_negative_small", "-1.5e-10"),
    (
        "numbers_in_an_object",
        r#"{"zero":0,"negative_zero":-0,"one":1,"minus_one":-1,"fraction":1.5,"tenth":0.1,"big":1e30,"small":1E-7,"huge":123456789012345680000,"safe":9007199254740991,"large":1.5e300,"tiny":5e-324}"#,
    ),
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
    canonical: String,
}

pub fn generate() -> Result<Vec<VectorFile>> {
    let cases = CASES
        .iter()
        .map(|&(name, input)| {
            let value: serde_json::Value =
                serde_json::from_str(input).with_context(|| format!("parsing case {name}"))?;
            let canonical = String::from_utf8(jcs(&value)).with_context(|| format!("case {name} is not UTF-8"))?;
            Ok(Case { name, input, canonical })
        })
        .collect::<Result<Vec<_>>>()?;
    let file = File {
        description: "RFC 8785 (JCS) canonical JSON. `input` is JSON text (a string, so number spellings \
                      survive); `canonical` is the JCS text of it: no insignificant whitespace, object members \
                      sorted by the UTF-16 code units of their names, minimal string escapes (only \\\", \\\\, \
                      \\b, \\f, \\n, \\r, \\t and \\u00XX for other control characters; everything else, \
                      U+2028 included, as raw UTF-8), numbers in the ECMAScript form of the nearest IEEE 754 \
                      double (negative zero as 0).",
        cases,
    };
    Ok(vec![json_file("canonical.json", &file)?])
}
