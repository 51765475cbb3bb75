/**
 * Strict JSON parsing: the I-JSON profile (RFC 7493) that RFC 8785 hashing presumes.
 *
 * `JSON.parse` keeps the last of two members with the same name and rounds every number to a
 * double, so a verifier using it could hash one event and show another. {@link parseStrictJson}
 * refuses such text instead (docs/FORMATS.md "Strict JSON (I-JSON)"); every verifier of this package
 * reads JSON through it. The rule, the same in every implementation of the log and pinned by
 * test-vectors/v1/strict-json.json:
 *
 * - the text is JSON (RFC 8259) in UTF-8 (`invalid_json`, path null);
 * - no object has two members with the same name, compared after unescaping
 *   (`duplicate_member`, at the second one);
 * - an integer literal lies within ±(2^53-1) (`unsafe_integer`); any other number is exactly the
 *   value of its nearest double, whose shortest form is what JCS writes (`inexact_number`); and a
 *   double that is an integer from 2^53 up to (not including) 10^21 is `unsafe_integer`;
 * - strings and names hold no surrogate code point and no Unicode noncharacter
 *   (`invalid_string`);
 * - arrays and objects nest at most {@link MAX_DEPTH} deep, as deep as serde_json reads
 *   (`invalid_json`).
 *
 * A small scanner checks the text and finds the first fault in document order with its path;
 * text that passes is then parsed by `JSON.parse`, whose result it cannot change.
 */

import { VerificationError } from "./errors.js";

/** What is wrong with JSON text, as test-vectors/v1/strict-json.json names it. */
export type StrictJsonFault = "invalid_json" | "duplicate_member" | "unsafe_integer" | "inexact_number" | "invalid_string";

/**
 * JSON text outside the rule. `code` is the kind of fault; `path` is where it is (`actor.id`,
 * `events[3].metadata.list[2]`, `""` for the root), null for `invalid_json`.
 */
export class StrictJsonError extends VerificationError {
  declare readonly code: StrictJsonFault;
  readonly path: string | null;

  constructor(code: StrictJsonFault, path: string | null, message: string) {
    super(code, path === null ? `${code}: ${message}` : `${code} at ${path === "" ? "the root" : path}: ${message}`);
    this.name = "StrictJsonError";
    this.path = path;
  }
}

/** The deepest nesting of arrays and objects accepted (serde_json refuses a 128th level). */
export const MAX_DEPTH = 127;

// Keeps a byte order mark, so that it is refused like any other stray character.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Parses JSON text (a string, or UTF-8 bytes) that follows the rule; throws a {@link StrictJsonError}. */
export function parseStrictJson(input: string | Uint8Array): unknown {
  let text: string;
  if (typeof input === "string") {
    text = input;
  } else {
    try {
      text = utf8.decode(input);
    } catch {
      throw new StrictJsonError("invalid_json", null, "the text is not UTF-8");
    }
  }
  new Scanner(text).document();
  return JSON.parse(text);
}

/**
 * Parses JSON the way serde_json reads a `Value`: the last of duplicate members wins, numbers are
 * rounded, noncharacters pass; what serde_json refuses (syntax, a lone surrogate escape, a number
 * beyond the double range, nesting deeper than {@link MAX_DEPTH}) throws. Only for naming the
 * seq of an export row that is not strict JSON, as the Rust verifier does.
 */
export function parseLenientJson(text: string): unknown {
  new Scanner(text, true).document();
  return JSON.parse(text);
}

/** The fault of a JSON number literal under the rule, or null. */
export function numberFault(literal: string): "unsafe_integer" | "inexact_number" | null {
  const value = Number(literal);
  if (!/[.eE]/.test(literal)) {
    // Rounding is monotonic and 2^53 is a double, so this is exact for any literal.
    return Math.abs(value) <= Number.MAX_SAFE_INTEGER ? null : "unsafe_integer";
  }
  if (!Number.isFinite(value) || decimalValue(literal) !== decimalValue(String(value))) return "inexact_number";
  if (Number.isInteger(value) && Math.abs(value) >= 2 ** 53 && Math.abs(value) < 1e21) return "unsafe_integer";
  return null;
}

/** A decimal literal's value as `[-]digits e exponent` without leading or trailing zeros ("0" for zero). */
function decimalValue(literal: string): string {
  let s = literal;
  const negative = s.startsWith("-");
  if (negative) s = s.slice(1);
  const e = s.search(/[eE]/);
  let mantissa = e < 0 ? s : s.slice(0, e);
  // A huge exponent loses precision here only when the value is 0 or infinite, told apart anyway.
  let exponent = e < 0 ? 0 : Number(s.slice(e + 1));
  const dot = mantissa.indexOf(".");
  if (dot >= 0) {
    exponent -= mantissa.length - dot - 1;
    mantissa = mantissa.slice(0, dot) + mantissa.slice(dot + 1);
  }
  const digits = mantissa.replace(/^0+/, "");
  if (digits === "") return "0";
  const significant = digits.replace(/0+$/, "");
  return `${negative ? "-" : ""}${significant}e${exponent + digits.length - significant.length}`;
}

function isNoncharacter(cp: number): boolean {
  return (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe;
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?/y;
const ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

/**
 * Recursive descent over the text; the first fault found, in document order, is thrown.
 * `lenient` reads as serde_json does (see {@link parseLenientJson}).
 */
class Scanner {
  private pos = 0;
  private readonly path: (string | number)[] = [];

  constructor(
    private readonly text: string,
    private readonly lenient = false,
  ) {}

  document(): void {
    this.whitespace();
    this.value(0);
    this.whitespace();
    if (this.pos !== this.text.length) throw this.fail("invalid_json", "text after the value");
  }

  private fail(code: StrictJsonFault, message: string, at: (string | number)[] = this.path): StrictJsonError {
    if (code === "invalid_json") return new StrictJsonError(code, null, `${message} at offset ${this.pos}`);
    let path = "";
    for (const s of at) path += typeof s === "number" ? `[${s}]` : path === "" ? s : `.${s}`;
    return new StrictJsonError(code, path, message);
  }

  private whitespace(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      this.pos++;
    }
  }

  private value(depth: number): void {
    const t = this.text;
    const c = t[this.pos];
    if ((c === "{" || c === "[") && depth >= MAX_DEPTH) throw this.fail("invalid_json", `arrays and objects nest deeper than ${MAX_DEPTH} levels`);
    if (c === "{") return this.object(depth);
    if (c === "[") return this.array(depth);
    if (c === '"') {
      this.string();
      return;
    }
    for (const word of ["true", "false", "null"]) {
      if (t.startsWith(word, this.pos)) {
        this.pos += word.length;
        return;
      }
    }
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(t);
    if (m === null) throw this.fail("invalid_json", "a value was expected");
    this.pos = NUMBER.lastIndex;
    const literal = m[0];
    if (this.lenient) {
      if (!Number.isFinite(Number(literal))) throw this.fail("inexact_number", `the number ${literal.slice(0, 40)} is beyond the range of a double`);
      return;
    }
    const fault = numberFault(literal);
    if (fault === "unsafe_integer") throw this.fail(fault, `the number ${literal.slice(0, 40)} is an integer beyond ±(2^53-1)`);
    if (fault !== null) throw this.fail(fault, `the number ${literal.slice(0, 40)} is not exactly the value of a double`);
  }

  private object(depth: number): void {
    const t = this.text;
    this.pos++;
    const names = new Set<string>();
    this.whitespace();
    if (t[this.pos] === "}") {
      this.pos++;
      return;
    }
    for (;;) {
      if (t[this.pos] !== '"') throw this.fail("invalid_json", "a member name was expected");
      const name = this.string();
      if (names.has(name) && !this.lenient) throw this.fail("duplicate_member", `the member name ${JSON.stringify(name.slice(0, 40))} occurs twice`, [...this.path, name]);
      names.add(name);
      this.whitespace();
      if (t[this.pos] !== ":") throw this.fail("invalid_json", "':' was expected");
      this.pos++;
      this.whitespace();
      this.path.push(name);
      this.value(depth + 1);
      this.path.pop();
      this.whitespace();
      const c = t[this.pos];
      if (c === "}") {
        this.pos++;
        return;
      }
      if (c !== ",") throw this.fail("invalid_json", "',' or '}' was expected");
      this.pos++;
      this.whitespace();
    }
  }

  private array(depth: number): void {
    const t = this.text;
    this.pos++;
    this.whitespace();
    if (t[this.pos] === "]") {
      this.pos++;
      return;
    }
    for (let i = 0; ; i++) {
      this.path.push(i);
      this.value(depth + 1);
      this.path.pop();
      this.whitespace();
      const c = t[this.pos];
      if (c === "]") {
        this.pos++;
        return;
      }
      if (c !== ",") throw this.fail("invalid_json", "',' or ']' was expected");
      this.pos++;
      this.whitespace();
    }
  }

  /**
   * Reads a string or member name and returns it unescaped. A forbidden character is reported at
   * the current path (for a name: the path of its object): an escaped lone surrogate where it
   * stands, as serde_json and jiter do, any other once the whole string has been read.
   */
  private string(): string {
    const t = this.text;
    this.pos++;
    let out = "";
    let bad: number | null = null;
    const check = (cp: number) => {
      if (bad === null && ((cp >= 0xd800 && cp <= 0xdfff) || isNoncharacter(cp))) bad = cp;
    };
    for (;;) {
      const start = this.pos;
      let c = t.charCodeAt(this.pos);
      // A run of characters that need no escape, checked code point by code point.
      while (this.pos < t.length && c !== 0x22 && c !== 0x5c && c >= 0x20) {
        if (c >= 0xd800 && c <= 0xdbff) {
          const low = t.charCodeAt(this.pos + 1);
          if (low >= 0xdc00 && low <= 0xdfff) {
            check(0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00));
            this.pos += 2;
            c = t.charCodeAt(this.pos);
            continue;
          }
        }
        check(c);
        c = t.charCodeAt(++this.pos);
      }
      out += t.slice(start, this.pos);
      if (this.pos >= t.length) throw this.fail("invalid_json", "an unterminated string");
      if (c === 0x22) {
        this.pos++;
        break;
      }
      if (c !== 0x5c) throw this.fail("invalid_json", "a control character in a string");
      const e = t[this.pos + 1] ?? "";
      const simple = ESCAPES[e];
      if (simple !== undefined) {
        out += simple;
        this.pos += 2;
        continue;
      }
      const unit = this.hex4(this.pos + 1);
      this.pos += 6;
      const lone = () => this.fail("invalid_string", `the string holds the lone surrogate escape \\u${unit.toString(16).padStart(4, "0")}`);
      if (unit >= 0xd800 && unit <= 0xdbff) {
        const after = t.slice(this.pos, this.pos + 2);
        if (after === "" || after === "\\") throw this.fail("invalid_json", "an unterminated string");
        const low = after === "\\u" ? this.hex4(this.pos + 1) : -1;
        if (low < 0xdc00 || low > 0xdfff) throw lone();
        this.pos += 6;
        check(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00));
        out += String.fromCharCode(unit, low);
        continue;
      }
      if (unit >= 0xdc00 && unit <= 0xdfff) throw lone();
      check(unit);
      out += String.fromCharCode(unit);
    }
    if (bad !== null && !this.lenient) {
      const hex = (bad as number).toString(16).toUpperCase().padStart(4, "0");
      throw this.fail("invalid_string", `the string holds U+${hex}, a surrogate or noncharacter`);
    }
    return out;
  }

  /** The four hex digits of a \u escape whose "u" is at `at`. */
  private hex4(at: number): number {
    const digits = this.text.slice(at + 1, at + 5);
    if (this.text[at] !== "u" || !/^[0-9a-fA-F]{4}$/.test(digits)) throw this.fail("invalid_json", "an invalid escape in a string");
    return parseInt(digits, 16);
  }
}
