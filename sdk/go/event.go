package auditlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Event is an audit event as a client sends it (docs/FORMATS.md "Event (as sent)"). Action and
// Actor.ID are required; empty optional strings are left out of the JSON. OccurredAt is RFC 3339
// text with an offset; [FormatTime] writes the normalised form.
type Event struct {
	Action     string          `json:"action"`
	Actor      Actor           `json:"actor"`
	Resource   *Resource       `json:"resource,omitempty"`
	Outcome    string          `json:"outcome,omitempty"`
	OccurredAt string          `json:"occurred_at,omitempty"`
	Severity   string          `json:"severity,omitempty"`
	Source     string          `json:"source,omitempty"`
	RequestID  string          `json:"request_id,omitempty"`
	SessionID  string          `json:"session_id,omitempty"`
	Metadata   map[string]any  `json:"metadata,omitempty"`
	Signature  *EventSignature `json:"signature,omitempty"`
}

// Actor is who did it.
type Actor struct {
	ID        string `json:"id"`
	Type      string `json:"type,omitempty"`
	Name      string `json:"name,omitempty"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// Resource is what it was done to.
type Resource struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// EventSignature is a publisher's Ed25519 signature over the event's [SigningBytes].
type EventSignature struct {
	KeyID string `json:"key_id"`
	Alg   string `json:"alg"`
	// Sig is the standard base64 of the 64-byte signature.
	Sig string `json:"sig"`
}

// TimeLayout is the one textual form of a time inside hashed bytes: UTC, six fractional digits.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// FormatTime writes t as UTC with exactly six fractional digits, sub-microsecond digits
// truncated: the form the log stores and hashes.
func FormatTime(t time.Time) string {
	return t.UTC().Truncate(time.Microsecond).Format(TimeLayout)
}

// NormalizeTime rewrites an RFC 3339 timestamp with an offset in the form of [FormatTime].
func NormalizeTime(s string) (string, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "", fmt.Errorf("%q is not an RFC 3339 timestamp with offset, e.g. 2026-01-31T12:00:00Z", truncate(s))
	}
	return FormatTime(t), nil
}

// ContentBytes returns the event's content as the log stores and digests it: the JCS of the
// normalised event, signature included (docs/FORMATS.md "Event content"). event is JSON text
// ([]byte, json.RawMessage) or anything encoding/json marshals to an event object, such as an
// [Event]. receivedAt supplies occurred_at when the event has none; with a zero receivedAt a
// missing occurred_at is an error.
func ContentBytes(event any, receivedAt time.Time) ([]byte, error) {
	return normalizedContent(event, receivedAt, true)
}

// SigningBytes returns the bytes a publisher signs: the content of [ContentBytes] without the
// signature member.
func SigningBytes(event any, receivedAt time.Time) ([]byte, error) {
	return normalizedContent(event, receivedAt, false)
}

var eventMembers = map[string]bool{
	"action": true, "actor": true, "resource": true, "outcome": true, "occurred_at": true,
	"severity": true, "source": true, "request_id": true, "session_id": true, "metadata": true,
	"signature": true,
}

var outcomes = map[string]bool{"success": true, "failure": true, "denied": true, "error": true}

func normalizedContent(event any, receivedAt time.Time, withSignature bool) ([]byte, error) {
	text, err := jsonText(event)
	if err != nil {
		return nil, err
	}
	members, err := objectMembers(text, "event")
	if err != nil {
		return nil, err
	}
	for name := range members {
		if !eventMembers[name] {
			return nil, fmt.Errorf("event: unknown member %q", truncate(name))
		}
	}
	if _, ok := rawString(members["action"]); !ok {
		return nil, errors.New("event: action is required and must be a string")
	}
	actor, err := objectMembers(members["actor"], "event.actor")
	if err != nil {
		return nil, errors.New("event: actor is required and must be an object")
	}
	if _, ok := rawString(actor["id"]); !ok {
		return nil, errors.New("event: actor.id is required and must be a string")
	}
	if members["actor"], err = json.Marshal(actor); err != nil {
		return nil, err
	}
	if raw, ok := members["resource"]; ok {
		resource, err := objectMembers(raw, "event.resource")
		if err != nil {
			return nil, err
		}
		if _, ok := rawString(resource["type"]); !ok {
			return nil, errors.New("event: resource.type is required when resource is present")
		}
		if members["resource"], err = json.Marshal(resource); err != nil {
			return nil, err
		}
	}

	outcome := "success"
	if raw, ok := members["outcome"]; ok {
		s, isString := rawString(raw)
		if !isString || !outcomes[s] {
			return nil, errors.New("event: outcome must be one of success, failure, denied, error")
		}
		outcome = s
	}
	members["outcome"], _ = json.Marshal(outcome)

	var occurredAt string
	if raw, ok := members["occurred_at"]; ok {
		s, isString := rawString(raw)
		if !isString {
			return nil, errors.New("event: occurred_at must be a string")
		}
		if occurredAt, err = NormalizeTime(s); err != nil {
			return nil, fmt.Errorf("event: occurred_at: %w", err)
		}
	} else if receivedAt.IsZero() {
		return nil, errors.New("event: occurred_at is required (no receive time to default to)")
	} else {
		occurredAt = FormatTime(receivedAt)
	}
	members["occurred_at"], _ = json.Marshal(occurredAt)

	if raw, ok := members["metadata"]; ok {
		metadata, err := objectMembers(raw, "event.metadata")
		if err != nil {
			return nil, err
		}
		if len(metadata) == 0 {
			delete(members, "metadata")
		}
	}
	if !withSignature {
		delete(members, "signature")
	}
	out, err := json.Marshal(members)
	if err != nil {
		return nil, err
	}
	return Canonicalize(out)
}

// jsonText returns v as JSON text: as is when it already is text (which must be strict JSON,
// see [CheckStrictJSON], as the service requires of it), else marshalled.
func jsonText(v any) ([]byte, error) {
	var text []byte
	switch t := v.(type) {
	case []byte:
		text = t
	case json.RawMessage:
		text = t
	case string:
		text = []byte(t)
	default:
		out, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("event: %w", err)
		}
		return out, nil
	}
	if err := CheckStrictJSON(text); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	return text, nil
}

// objectMembers decodes a JSON object into its members, leaving out members whose value is null
// (an optional member given as null is absent). Member values keep their exact text.
func objectMembers(raw json.RawMessage, what string) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("%s must be a JSON object", what)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &members); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	for name, value := range members {
		if string(value) == "null" {
			delete(members, name)
		}
	}
	return members, nil
}
