"""The strict JSON rule (docs/FORMATS.md "Strict JSON (I-JSON)"), case by case; the shared vectors of
test-vectors/v1/strict-json.json are checked in test_vectors.py."""

from __future__ import annotations

import pytest

from auditlog import StrictJSONError, loads_strict
from auditlog.strict_json import _Scanner

ACCEPTED = [
    ('{"a":1,"b":[true,false,null,"x"]}', {"a": 1, "b": [True, False, None, "x"]}),
    ("-0", 0),
    ("9007199254740991", 9007199254740991),
    ("-9007199254740991", -9007199254740991),
    ("0.1", 0.1),
    ("1.50", 1.5),
    ("1E2", 100.0),
    ("1e21", 1e21),
    ("5e-324", 5e-324),
    ("1.7976931348623157e308", 1.7976931348623157e308),
    ("9007199254740991.0", 9007199254740991.0),
    ('"\\ud83d\\ude00 \\u00e9 \\ufffd"', "\U0001f600 \u00e9 \ufffd"),
    ('{"a":{"a":1},"b":{"a":2}}', {"a": {"a": 1}, "b": {"a": 2}}),
    (" \t\r\n[ ] ", []),
    ('{"__proto__":1}', {"__proto__": 1}),
]

REFUSED = [
    ('{"a":1,"a":2}', "duplicate_member", "a"),
    ('{"a":1,"\\u0061":2}', "duplicate_member", "a"),
    (
        '{"events":[{},{},{},{"metadata":{"list":[0,1,{"k":1,"k":1}]}}]}',
        "duplicate_member",
        "events[3].metadata.list[2].k",
    ),
    ("9007199254740992", "unsafe_integer", ""),
    ("-9007199254740992", "unsafe_integer", ""),
    ('{"n":123456789012345680000}', "unsafe_integer", "n"),
    ("1e20", "unsafe_integer", ""),
    ("[9007199254740992.0]", "unsafe_integer", "[0]"),
    ("0.10000000000000001", "inexact_number", ""),
    ("333333333.33333329", "inexact_number", ""),
    ("1e400", "inexact_number", ""),
    ("-1e400", "inexact_number", ""),
    ("1e-400", "inexact_number", ""),
    ('{"s":"\\ud800"}', "invalid_string", "s"),
    ('{"s":"\\udc00\\ud800"}', "invalid_string", "s"),
    ('["\\ufdd0"]', "invalid_string", "[0]"),
    ('["\ufdef"]', "invalid_string", "[0]"),
    ('["\\uFFFE"]', "invalid_string", "[0]"),
    ('["\\ud83f\\udfff"]', "invalid_string", "[0]"),
    ('["\U0010ffff"]', "invalid_string", "[0]"),
    ('{"a":{"\\uffff":1}}', "invalid_string", "a"),
    ('{"\\ufffe":1}', "invalid_string", ""),
    ('{"a":{"\\ud800":1}}', "invalid_string", "a"),
    # An escaped lone surrogate is refused where it stands, before the rest of the string.
    ('{"s":"x\\ud83dy"}', "invalid_string", "s"),
    ('{"s":"\\ud83d\\u0041"}', "invalid_string", "s"),
    ('{"s":["\\ud83d\\n"]}', "invalid_string", "s[0]"),
    ('["\\ud800\t"]', "invalid_string", "[0]"),
    ('"\\ud800"', "invalid_string", ""),
    ('["\\ud800', "invalid_json", None),
    ('["\\ud800\\', "invalid_json", None),
    ('["\\ud800\\uZZZZ"]', "invalid_json", None),
    ('{"a":1', "invalid_json", None),
    ("[1,]", "invalid_json", None),
    ("NaN", "invalid_json", None),
    ("01", "invalid_json", None),
    ('"\t"', "invalid_json", None),
    ("\ufeff{}", "invalid_json", None),
    ("", "invalid_json", None),
    ('{"a":1}{}', "invalid_json", None),
]


@pytest.mark.parametrize(("text", "value"), ACCEPTED)
def test_accepts_i_json_with_its_values(text: str, value: object) -> None:
    assert loads_strict(text) == value
    assert loads_strict(text.encode()) == value
    assert _Scanner(text).document() == value


@pytest.mark.parametrize(("text", "kind", "path"), REFUSED)
def test_refuses_text_outside_the_rule_with_kind_and_path(text: str, kind: str, path: str | None) -> None:
    with pytest.raises(StrictJSONError) as e:
        loads_strict(text)
    assert (e.value.kind, e.value.path) == (kind, path), str(e.value)


def test_integers_stay_int_and_other_numbers_float() -> None:
    value = loads_strict("[1, 1.0, 1e0, -0]")
    assert [type(v) for v in value] == [int, float, float, int]


def test_nesting_deeper_than_127_levels_is_invalid_json() -> None:
    assert loads_strict("[" * 127 + "]" * 127) is not None
    for text in ("[" * 128 + "]" * 128, '{"a":' * 128 + "1" + "}" * 128, "[" * 100_000):
        with pytest.raises(StrictJSONError) as e:
            loads_strict(text)
        assert (e.value.kind, e.value.path) == ("invalid_json", None)


def test_invalid_utf8_is_invalid_json() -> None:
    with pytest.raises(StrictJSONError) as e:
        loads_strict(b'"\xff"')
    assert (e.value.kind, e.value.path) == ("invalid_json", None)


def test_the_first_fault_in_document_order_is_reported() -> None:
    with pytest.raises(StrictJSONError) as e:
        loads_strict('{"a":[1e400],"b":1,"b":2}')
    assert (e.value.kind, e.value.path) == ("inexact_number", "a[0]")
