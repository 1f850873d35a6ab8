package httpapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/oarsdev/oars/internal/strictjson"
)

// readJSON reads r's body and decodes it into v, which must be a pointer to
// a struct of this package. It requires Content-Type application/json
// (415), bounds the body by s.maxBody (413), checks that the body is strict
// JSON (400 naming the problem and its location: duplicate keys, invalid
// UTF-8, nesting, trailing data…), and decodes it rejecting unknown fields
// and values of the wrong type, naming the field (400).
func (s *server) readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	return decodeStrict(body, v)
}

// readBody reads r's body as readJSON does, without decoding it: it
// requires Content-Type application/json (415) and bounds the body by
// s.maxBody (413).
func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return nil, err
	}
	if r.ContentLength > s.maxBody {
		return nil, tooLarge(s.maxBody)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge(s.maxBody)
		}
		return nil, badRequest("could not read the request body")
	}
	return body, nil
}

func tooLarge(max int64) error {
	return errorf(http.StatusRequestEntityTooLarge, codeTooLarge,
		fmt.Sprintf("request body is larger than %d bytes", max))
}

// checkContentType accepts application/json, with an optional charset
// parameter of utf-8.
func checkContentType(ct string) error {
	unsupported := errorf(http.StatusUnsupportedMediaType, codeUnsupportedMedia, "Content-Type must be application/json")
	if ct == "" {
		return unsupported
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return unsupported
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return unsupported
		}
	}
	return nil
}

// decodeStrict checks body strictly and decodes it into v.
func decodeStrict(body []byte, v any) error {
	if err := strictjson.Check(body); err != nil {
		return badRequest("invalid JSON body: " + strings.TrimPrefix(err.Error(), "json: "))
	}
	if err := jsonv2.Unmarshal(body, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		return badRequest(decodeMessage(err))
	}
	return nil
}

// decodeMessage describes a decoding error of a strict-JSON body by the
// field it concerns, never by its value.
func decodeMessage(err error) string {
	se, ok := errors.AsType[*jsonv2.SemanticError](err)
	if !ok {
		return "invalid request body"
	}
	field := fieldName(se.JSONPointer)
	if errors.Is(se.Err, jsonv2.ErrUnknownName) {
		return fmt.Sprintf("unknown field %s", quoteField(field))
	}
	if se.GoType == nil {
		return "invalid request body"
	}
	want := jsonKind(se.GoType)
	if field == "" {
		return "request body must be a JSON " + want
	}
	return fmt.Sprintf("field %s: want %s", quoteField(field), want)
}

// fieldName turns a JSON pointer into a dotted field path such as
// "resource.tool_id" (array indexes become path elements: "roles.0").
func fieldName(p jsontext.Pointer) string {
	var parts []string
	for tok := range p.Tokens() {
		parts = append(parts, tok)
	}
	return strings.Join(parts, ".")
}

// quoteField quotes a field path for an error message, shortened to a
// bounded length.
func quoteField(f string) string {
	return strconv.Quote(truncateUTF8(f, 100))
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == reflect.TypeFor[jsontext.Value]() {
		return "JSON value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	default:
		return "value of another type"
	}
}

// query is a request's validated query string.
type query url.Values

// parseQuery parses r's query string, allowing only the named parameters,
// each at most once (400 naming the parameter otherwise).
func parseQuery(r *http.Request, allowed ...string) (query, error) {
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query string")
	}
	for k, v := range vals {
		known := false
		for _, a := range allowed {
			known = known || k == a
		}
		if !known {
			return nil, badRequest(fmt.Sprintf("unknown query parameter %s", quoteField(k)))
		}
		if len(v) > 1 {
			return nil, badRequest(fmt.Sprintf("query parameter %q given more than once", k))
		}
	}
	return query(vals), nil
}

// get returns the value of parameter name, "" if absent.
func (q query) get(name string) string { return url.Values(q).Get(name) }

// has reports whether parameter name is present.
func (q query) has(name string) bool { return url.Values(q).Has(name) }

// int returns parameter name as a non-negative decimal integer (no sign,
// no leading zeros). present is false when the parameter is absent.
func (q query) int(name string) (n int64, present bool, err error) {
	if !q.has(name) {
		return 0, false, nil
	}
	n, ok := parseIndex(q.get(name))
	if !ok {
		return 0, true, badRequest(fmt.Sprintf("query parameter %q must be a non-negative integer", name))
	}
	return n, true, nil
}

// parseIndex parses a non-negative decimal integer without sign or leading
// zeros.
func parseIndex(s string) (int64, bool) {
	if s == "" || len(s) > 19 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
