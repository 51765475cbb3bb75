/**
 * The strict JSON rule (docs/FORMATS.md "Strict JSON (I-JSON)"), case by case; the shared vectors of
 * test-vectors/v1/strict-json.json are checked in vectors.test.ts.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseStrictJson, StrictJsonError, VerificationError } from "../src/index.js";

const accepted: [string, unknown][] = [
  ['{"a":1,"b":[true,false,null,"x"]}', { a: 1, b: [true, false, null, "x"] }],
  ["-0", -0],
  ["9007199254740991", 9007199254740991],
  ["-9007199254740991", -9007199254740991],
  ["0.1", 0.1],
  ["1.50", 1.5],
  ["1E2", 100],
  ["1e21", 1e21],
  ["5e-324", 5e-324],
  ["1.7976931348623157e308", 1.7976931348623157e308],
  ["9007199254740991.0", 9007199254740991],
  ['"\\ud83d\\ude00 \\u00e9 \\ufffd"', "\u{1f600} \u00e9 \ufffd"],
  ['{"a":{"a":1},"b":{"a":2}}', { a: { a: 1 }, b: { a: 2 } }],
  [" \t\r\n[ ] ", []],
];

const refused: [string, string, string | null][] = [
  ['{"a":1,"a":2}', "duplicate_member", "a"],
  ['{"a":1,"\\u0061":2}', "duplicate_member", "a"],
  ['{"events":[{},{},{},{"metadata":{"list":[0,1,{"k":1,"k":1}]}}]}', "duplicate_member", "events[3].metadata.list[2].k"],
  ['{"__proto__":1,"__proto__":2}', "duplicate_member", "__proto__"],
  ["9007199254740992", "unsafe_integer", ""],
  ["-9007199254740992", "unsafe_integer", ""],
  ['{"n":123456789012345680000}', "unsafe_integer", "n"],
  ["1e20", "unsafe_integer", ""],
  ["[9007199254740992.0]", "unsafe_integer", "[0]"],
  ["0.10000000000000001", "inexact_number", ""],
  ["333333333.33333329", "inexact_number", ""],
  ["1e400", "inexact_number", ""],
  ["-1e400", "inexact_number", ""],
  ["1e-400", "inexact_number", ""],
  ['{"s":"\\ud800"}', "invalid_string", "s"],
  ['{"s":"\\udc00\\ud800"}', "invalid_string", "s"],
  ['["\\ufdd0"]', "invalid_string", "[0]"],
  ['["\ufdef"]', "invalid_string", "[0]"],
  ['["\\uFFFE"]', "invalid_string", "[0]"],
  ['["\\ud83f\\udfff"]', "invalid_string", "[0]"],
  ['["\u{10ffff}"]', "invalid_string", "[0]"],
  ['["\ud800"]', "invalid_string", "[0]"],
  ['{"a":{"\\uffff":1}}', "invalid_string", "a"],
  ['{"\\ufffe":1}', "invalid_string", ""],
  ['{"a":{"\\ud800":1}}', "invalid_string", "a"],
  // An escaped lone surrogate is refused where it stands, before the rest of the string.
  ['{"s":"x\\ud83dy"}', "invalid_string", "s"],
  ['{"s":"\\ud83d\\u0041"}', "invalid_string", "s"],
  ['{"s":["\\ud83d\\n"]}', "invalid_string", "s[0]"],
  ['["\\ud800\t"]', "invalid_string", "[0]"],
  ['"\\ud800"', "invalid_string", ""],
  ['["\\ud800', "invalid_json", null],
  ['["\\ud800\\', "invalid_json", null],
  ['["\\ud800\\uZZZZ"]', "invalid_json", null],
  ['{"a":1', "invalid_json", null],
  ["[1,]", "invalid_json", null],
  ["NaN", "invalid_json", null],
  ["01", "invalid_json", null],
  ['"\t"', "invalid_json", null],
  ["\ufeff{}", "invalid_json", null],
  ["", "invalid_json", null],
  ['{"a":1}{}', "invalid_json", null],
];

function fault(input: string | Uint8Array): { code: string; path: string | null } {
  try {
    parseStrictJson(input);
  } catch (e) {
    assert.ok(e instanceof StrictJsonError && e instanceof VerificationError, String(e));
    return { code: e.code, path: e.path };
  }
  assert.fail(`accepted ${JSON.stringify(input)}`);
}

describe("parseStrictJson", () => {
  it("accepts I-JSON with the values JSON.parse gives", () => {
    for (const [text, value] of accepted) {
      assert.deepEqual(parseStrictJson(text), value, text);
      assert.deepEqual(parseStrictJson(Buffer.from(text, "utf8")), value, `${text} as bytes`);
    }
  });

  it("refuses text outside the rule with the kind and path of the first fault", () => {
    for (const [text, code, path] of refused) {
      assert.deepEqual(fault(text), { code, path }, text);
    }
  });

  it("refuses bytes that are not UTF-8, and a UTF-8 byte order mark", () => {
    assert.deepEqual(fault(Buffer.from([0x22, 0xff, 0x22])), { code: "invalid_json", path: null });
    assert.deepEqual(fault(Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d])), { code: "invalid_json", path: null });
  });

  it("refuses nesting deeper than 127 levels as invalid_json", () => {
    assert.deepEqual(parseStrictJson("[".repeat(127) + "]".repeat(127)), JSON.parse("[".repeat(127) + "]".repeat(127)));
    for (const text of ["[".repeat(128) + "]".repeat(128), '{"a":'.repeat(128) + "1" + "}".repeat(128), "[".repeat(100_000)]) {
      assert.deepEqual(fault(text), { code: "invalid_json", path: null });
    }
  });

  it("reports the first fault in document order", () => {
    assert.deepEqual(fault('{"a":[1e400],"b":1,"b":2}'), { code: "inexact_number", path: "a[0]" });
  });

  it("keeps a __proto__ member as an own property, as JSON.parse does", () => {
    const v = parseStrictJson('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    assert.ok(Object.hasOwn(v, "__proto__"));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});
