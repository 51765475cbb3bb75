package auditlog

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The strict JSON rule, case by case; the shared vectors of test-vectors/v1/strict-json.json
// are checked in vectors_test.go.

func TestCheckStrictJSONAcceptsIJSON(t *testing.T) {
	for _, text := range []string{
		`{"a":1,"b":[true,false,null,"x"]}`, `-0`, `9007199254740991`, `-9007199254740991`, `0.1`, `1.50`, `1E2`,
		`1e21`, `5e-324`, `1.7976931348623157e308`, `9007199254740991.0`, `"\ud83d\ude00 \u00e9 \ufffd"`,
		`{"a":{"a":1},"b":{"a":2}}`, " \t\r\n[ ] ", `-0.0`, `0e999999999999999999999`,
		strings.Repeat("[", 127) + strings.Repeat("]", 127),
	} {
		if err := CheckStrictJSON([]byte(text)); err != nil {
			t.Errorf("%s: %v", text, err)
		}
	}
}

func TestCheckStrictJSONRefusesTextOutsideTheRuleWithKindAndPath(t *testing.T) {
	for _, c := range []struct{ text, kind, path string }{
		{`{"a":1,"a":2}`, StrictDuplicateMember, "a"},
		{`{"a":1,"\u0061":2}`, StrictDuplicateMember, "a"},
		{`{"events":[{},{},{},{"metadata":{"list":[0,1,{"k":1,"k":1}]}}]}`, StrictDuplicateMember, "events[3].metadata.list[2].k"},
		{`9007199254740992`, StrictUnsafeInteger, ""},
		{`-9007199254740992`, StrictUnsafeInteger, ""},
		{`{"n":123456789012345680000}`, StrictUnsafeInteger, "n"},
		{`1e20`, StrictUnsafeInteger, ""},
		{`[9007199254740992.0]`, StrictUnsafeInteger, "[0]"},
		{`0.10000000000000001`, StrictInexactNumber, ""},
		{`333333333.33333329`, StrictInexactNumber, ""},
		{`1e400`, StrictInexactNumber, ""},
		{`-1e400`, StrictInexactNumber, ""},
		{`1e-400`, StrictInexactNumber, ""},
		{`1e99999999999999999999`, StrictInexactNumber, ""},
		{`{"s":"\ud800"}`, StrictInvalidString, "s"},
		{`{"s":"\udc00\ud800"}`, StrictInvalidString, "s"},
		{`["\ufdd0"]`, StrictInvalidString, "[0]"},
		{"[\"\uFDEF\"]", StrictInvalidString, "[0]"},
		{`["\uFFFE"]`, StrictInvalidString, "[0]"},
		{`["\ud83f\udfff"]`, StrictInvalidString, "[0]"},
		{"[\"\U0010FFFF\"]", StrictInvalidString, "[0]"},
		{`{"a":{"\uffff":1}}`, StrictInvalidString, "a"},
		{`{"\ufffe":1}`, StrictInvalidString, ""},
		{`{"a":{"\ud800":1}}`, StrictInvalidString, "a"},
		// An escaped lone surrogate is refused where it stands, before the rest of the string.
		{`{"s":"x\ud83dy"}`, StrictInvalidString, "s"},
		{`{"s":"\ud83d\u0041"}`, StrictInvalidString, "s"},
		{`{"s":["\ud83d\n"]}`, StrictInvalidString, "s[0]"},
		{"[\"\\ud800\t\"]", StrictInvalidString, "[0]"},
		{`"\ud800"`, StrictInvalidString, ""},
		{`["\ud800`, StrictInvalidJSON, ""},
		{`["\ud800\`, StrictInvalidJSON, ""},
		{`["\ud800\uZZZZ"]`, StrictInvalidJSON, ""},
		{strings.Repeat("[", 128) + strings.Repeat("]", 128), StrictInvalidJSON, ""},
		{strings.Repeat(`{"a":`, 128) + "1" + strings.Repeat("}", 128), StrictInvalidJSON, ""},
		{strings.Repeat("[", 100000), StrictInvalidJSON, ""},
		{`{"a":1`, StrictInvalidJSON, ""},
		{`[1,]`, StrictInvalidJSON, ""},
		{`NaN`, StrictInvalidJSON, ""},
		{`01`, StrictInvalidJSON, ""},
		{"\"\t\"", StrictInvalidJSON, ""},
		{"\uFEFF{}", StrictInvalidJSON, ""},
		{``, StrictInvalidJSON, ""},
		{`{"a":1}{}`, StrictInvalidJSON, ""},
		{"\"\xff\"", StrictInvalidJSON, ""},
		{"\"\xed\xa0\x80\"", StrictInvalidJSON, ""}, // a surrogate encoded as UTF-8 is not UTF-8
		{`{"a":[1e400],"b":1,"b":2}`, StrictInexactNumber, "a[0]"},
	} {
		err := CheckStrictJSON([]byte(c.text))
		var se *StrictJSONError
		if !errors.As(err, &se) {
			t.Errorf("%s: want %s, got %v", c.text, c.kind, err)
			continue
		}
		if se.Kind != c.kind || se.Path != c.path {
			t.Errorf("%s: got %s at %q, want %s at %q (%v)", c.text, se.Kind, se.Path, c.kind, c.path, se)
		}
	}
}

func TestUnmarshalStrictDecodesWhatPasses(t *testing.T) {
	var v struct {
		Seq uint64 `json:"seq"`
	}
	if err := UnmarshalStrict([]byte(`{"seq":7}`), &v); err != nil || v.Seq != 7 {
		t.Fatalf("got %v, %v", v, err)
	}
	if err := UnmarshalStrict([]byte(`{"seq":7,"seq":8}`), &v); err == nil {
		t.Fatal("a duplicate member must be refused")
	}
}

func TestEventSignatureOfTextWithADuplicateMemberIsRefused(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	signed, err := SignEvent(Event{Action: "user.login", Actor: Actor{ID: "ada"}, OccurredAt: "2026-11-24T10:00:00Z"}, "k1", priv)
	if err != nil {
		t.Fatal(err)
	}
	text, err := json.Marshal(signed)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyEventSignature(json.RawMessage(text), *signed.Signature, pub); err != nil {
		t.Fatalf("the signed event's own text must verify: %v", err)
	}
	// A forged first "action": a last-wins decoder verifies the signature over the genuine one.
	forged := strings.Replace(string(text), `{"action":"user.login"`, `{"action":"user.logout","action":"user.login"`, 1)
	if forged == string(text) {
		t.Fatalf("no action to forge in %s", text)
	}
	var se *StrictJSONError
	if err := VerifyEventSignature(json.RawMessage(forged), *signed.Signature, pub); !errors.As(err, &se) || se.Path != "action" {
		t.Fatalf("want duplicate_member at action, got %v", err)
	}
}
