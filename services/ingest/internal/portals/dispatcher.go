package portals

import (
	"errors"
	"fmt"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/problem"
	"github.com/eventsync/eventsync/pkg/subject"
)

// DefaultUnknownTag is the tag of a dispatcher event without a kind (or
// of kind "unknown"); its category is also the category of kinds that are
// neither URNs nor mapped.
const DefaultUnknownTag = "DISPATCHER.UNKNOWN"

// Kinds turns the dispatcher's kinds into EventSync tags:
//
//  1. a missing or empty kind, or "unknown", is the Unknown tag;
//  2. else the longest Map prefix the kind starts with (a whole part: the
//     prefix urn:acme:billing matches urn:acme:billing and
//     urn:acme:billing:…, case-insensitively) gives the category; the
//     parts after the prefix add to it but the last, which is the code
//     (with nothing after the prefix, the kind's last part is the code);
//  3. else a URN urn:<ns>:<p1>:…:<pn> is the tag P1.….P(n-1).PN (a URN
//     with one part after the namespace is that part as a code in the
//     Unknown tag's category);
//  4. else the kind is a code in the Unknown tag's category.
//
// Parts are uppercased, every character outside [A-Za-z0-9_-] becomes _,
// and they are cut to 64 bytes; empty parts are skipped.
type Kinds struct {
	Map     KindMap
	Unknown Tag // tag of unknown kinds; default DefaultUnknownTag
}

// KindMap is the value of --dispatcher-kind-map: comma-separated
// prefix=CATEGORY entries.
type KindMap []KindRule

// KindRule maps the kinds starting with Prefix to Category.
type KindRule struct {
	Prefix   string
	Category string
}

// Set parses comma-separated prefix=CATEGORY entries.
func (m *KindMap) Set(s string) error {
	var out KindMap
	for entry := range strings.SplitSeq(s, ",") {
		if entry = strings.TrimSpace(entry); entry == "" {
			continue
		}
		i := strings.LastIndexByte(entry, '=')
		if i < 0 {
			return fmt.Errorf("%q is not prefix=CATEGORY", entry)
		}
		prefix, category := strings.TrimRight(strings.TrimSpace(entry[:i]), ":"), strings.TrimSpace(entry[i+1:])
		if prefix == "" {
			return fmt.Errorf("%q has an empty prefix", entry)
		}
		if err := subject.ValidateCategory(category); err != nil {
			return fmt.Errorf("%q: category %w", entry, err)
		}
		out = append(out, KindRule{Prefix: prefix, Category: category})
	}
	*m = out
	return nil
}

// String lists the entries as Set takes them.
func (m KindMap) String() string {
	s := make([]string, len(m))
	for i, r := range m {
		s[i] = r.Prefix + "=" + r.Category
	}
	return strings.Join(s, ",")
}

// Tag is a tag setting (--dispatcher-unknown-tag), checked when set.
type Tag string

// Set checks and sets the tag.
func (t *Tag) Set(s string) error {
	if _, _, err := subject.SplitTag(s); err != nil {
		return fmt.Errorf("tag %w", err)
	}
	*t = Tag(s)
	return nil
}

// String returns the tag.
func (t Tag) String() string { return string(t) }

func (k Kinds) unknown() string {
	if k.Unknown == "" {
		return DefaultUnknownTag
	}
	return string(k.Unknown)
}

// Tag returns the tag of a kind by the rules of Kinds.
func (k Kinds) Tag(kind string) string {
	kind = strings.TrimSpace(kind)
	if kind == "" || strings.EqualFold(kind, "unknown") {
		return k.unknown()
	}
	fallback, _, _ := subject.SplitTag(k.unknown())
	parts := strings.Split(kind, ":")
	if rule, ok := k.match(kind); ok {
		rest := tokens(parts[strings.Count(rule.Prefix, ":")+1:])
		if len(rest) == 0 { // the prefix is the whole kind
			rest = tokens(parts[len(parts)-1:])
		}
		if len(rest) == 0 {
			rest = []string{Token(kind)}
		}
		return strings.Join(append([]string{rule.Category}, rest...), ".")
	}
	if len(parts) >= 3 && strings.EqualFold(parts[0], "urn") {
		switch ts := tokens(parts[2:]); len(ts) {
		case 0:
		case 1:
			return fallback + "." + ts[0]
		default:
			return strings.Join(ts, ".")
		}
	}
	return fallback + "." + Token(kind)
}

// match returns the longest rule whose prefix is the kind or a run of its
// first parts.
func (k Kinds) match(kind string) (KindRule, bool) {
	var best KindRule
	found := false
	for _, r := range k.Map {
		n := len(r.Prefix)
		if len(kind) < n || !strings.EqualFold(kind[:n], r.Prefix) || len(kind) > n && kind[n] != ':' {
			continue
		}
		if !found || n > len(best.Prefix) {
			best, found = r, true
		}
	}
	return best, found
}

// tokens are the non-empty parts as tag tokens.
func tokens(parts []string) []string {
	var out []string
	for _, p := range parts {
		if t := Token(p); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// Token makes s a tag token: uppercased, every character outside
// [A-Za-z0-9_-] replaced by _, at most 64 bytes. Spaces around s are
// dropped first ("Push Hook" is PUSH_HOOK).
func Token(s string) string {
	s = strings.TrimSpace(s)
	var b strings.Builder
	for _, c := range s {
		if b.Len() == subject.MaxTokenLen {
			break
		}
		switch {
		case c >= 'a' && c <= 'z':
			b.WriteRune(c - 'a' + 'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// severities are the dispatcher's severities (and common spellings of
// them) in EventSync's.
var severities = map[string]string{
	"emergency":     "critical",
	"emerg":         "critical",
	"alert":         "critical",
	"fatal":         "critical",
	"critical":      "critical",
	"crit":          "critical",
	"error":         "error",
	"err":           "error",
	"warning":       "warning",
	"warn":          "warning",
	"notice":        "notice",
	"info":          "info",
	"information":   "info",
	"informational": "info",
	"debug":         "debug",
	"trace":         "debug",
}

// isoLayouts are ISO 8601 forms of a timestamp beyond what EventSync
// takes (RFC 3339 and "YYYY-MM-DD HH:MM:SS"): offsets without a colon or
// without minutes, and the basic format.
var isoLayouts = []string{
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999Z07",
	"20060102T150405.999999999Z0700",
	"20060102T150405.999999999Z07:00",
	"20060102T150405.999999999Z07",
}

// timestamp is an ISO 8601 timestamp as EventSync takes it: unchanged when
// EventSync reads it, in RFC 3339 when it is another ISO 8601 form, and
// unchanged otherwise (EventSync then answers 422 for /timestamp).
func timestamp(s string) string {
	if _, err := event.ParseTime(s); err == nil {
		return s
	}
	// ISO 8601 allows a comma before the fraction.
	v := strings.Replace(s, ",", ".", 1)
	if _, err := event.ParseTime(v); err == nil {
		return v
	}
	for _, layout := range isoLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC().Format(time.RFC3339Nano)
		}
	}
	return s
}

// Fields of the dispatcher's canonical event that are not kept in data
// as they are.
const (
	fieldTimestamp = "timestamp"
	fieldKind      = "kind"
	fieldMessage   = "message"
	fieldSource    = "source"
	fieldSeverity  = "severity"
	fieldViewLink  = "view_link"
	fieldAckLink   = "ack_link"
)

// kept are the canonical fields kept in data, under their names with a
// leading underscore.
var kept = []string{fieldKind, fieldViewLink, fieldAckLink}

// Translate turns the dispatcher's canonical event, a JSON object, into
// the body of POST /v1/events: kind → tag (by k) and data._kind,
// view_link and ack_link → data._view_link and data._ack_link, severity
// → EventSync's severity, timestamp → RFC 3339 when it is another ISO
// 8601 form, message and source as they are, every other field in data.
// Errors are problems: 400 for a body that is not one JSON object, 422
// for a missing or empty message (the dispatcher requires one, EventSync
// does not), a kind or severity EventSync cannot take or a field named
// like a kept one (_kind …). The rest (timestamp, sizes, data numbers) is
// EventSync's own validation.
func (k Kinds) Translate(body []byte) ([]byte, error) {
	var in map[string]jsontext.Value
	if err := jsonv2.Unmarshal(body, &in); err != nil {
		var se *jsontext.SyntacticError
		switch {
		case errors.As(err, &se) && errors.Is(err, jsontext.ErrDuplicateName):
			return nil, problem.BadRequest(fmt.Sprintf("the body is not valid JSON: %s appears twice", se.JSONPointer))
		case errors.As(err, &se):
			return nil, problem.BadRequest("the body is not valid JSON: " + se.Err.Error())
		}
		return nil, problem.BadRequest("the body must be one JSON object (the dispatcher's canonical event)")
	}
	if in == nil {
		return nil, problem.BadRequest("the body must be one JSON object, not null")
	}
	var errs []problem.FieldError
	str := func(name string) (string, bool) {
		v, ok := in[name]
		if !ok || v.Kind() == 'n' {
			return "", false
		}
		var s string
		if v.Kind() != '"' || jsonv2.Unmarshal(v, &s) != nil {
			errs = append(errs, problem.FieldError{Pointer: "/" + name, Detail: "must be a string"})
			return "", false
		}
		return s, true
	}
	out := map[string]any{}
	data := map[string]jsontext.Value{}
	kind, ok := str(fieldKind)
	if !ok || strings.TrimSpace(kind) == "" {
		kind = "unknown"
	}
	out["tag"] = k.Tag(kind)
	data["_"+fieldKind], _ = jsonv2.Marshal(kind)
	if sev, ok := str(fieldSeverity); ok {
		if s, known := severities[strings.ToLower(strings.TrimSpace(sev))]; known {
			out["severity"] = s
		} else {
			errs = append(errs, problem.FieldError{Pointer: "/" + fieldSeverity,
				Detail: "must be one of emergency, alert, critical, error, warning, notice, info, debug (or fatal, crit, err, warn, information, trace)"})
		}
	}
	if v, ok := in[fieldTimestamp]; ok {
		var ts string
		if v.Kind() == '"' && jsonv2.Unmarshal(v, &ts) == nil {
			out["timestamp"] = timestamp(ts)
		} else {
			out["timestamp"] = v // EventSync says what is wrong with it
		}
	}
	// EventSync's message is optional; the dispatcher's is not.
	if v, ok := in[fieldMessage]; !ok || v.Kind() == 'n' || string(v) == `""` {
		errs = append(errs, problem.FieldError{Pointer: "/" + fieldMessage, Detail: "is required"})
	}
	for _, name := range []string{fieldMessage, fieldSource} {
		if v, ok := in[name]; ok {
			out[name] = v
		}
	}
	for name, v := range in {
		switch name {
		case fieldTimestamp, fieldKind, fieldMessage, fieldSource, fieldSeverity:
		case fieldViewLink, fieldAckLink:
			data["_"+name] = v
		case "_" + fieldKind, "_" + fieldViewLink, "_" + fieldAckLink:
			errs = append(errs, problem.FieldError{Pointer: "/" + name, Detail: "is reserved: EventSync keeps " + name[1:] + " in data under this name"})
		default:
			data[name] = v
		}
	}
	if len(errs) > 0 {
		return nil, problem.Invalid(fmt.Sprintf("%d field(s) of the dispatcher event are invalid; nothing was published", len(errs)), errs...)
	}
	out["data"] = data
	b, err := jsonv2.Marshal(out, jsonv2.Deterministic(true))
	if err != nil {
		return nil, fmt.Errorf("encode translated event: %w", err)
	}
	return b, nil
}

// canonicalPointer points a field error of the translated event back at
// the field of the dispatcher's event it came from.
func canonicalPointer(p string) string {
	switch p {
	case "/tag", "/category", "/code", "/data/_" + fieldKind:
		return "/" + fieldKind
	case "/data/_" + fieldViewLink:
		return "/" + fieldViewLink
	case "/data/_" + fieldAckLink:
		return "/" + fieldAckLink
	case "/data":
		return ""
	}
	if rest, ok := strings.CutPrefix(p, "/data/"); ok {
		return "/" + rest
	}
	return p
}
