package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Error codes of error responses: the OAP error enum where one fits, plus
// payload_too_large, method_not_allowed, unsupported_media_type and
// not_implemented.
const (
	codeValidation       = "validation_failed"
	codeUnauthorized     = "unauthorized"
	codeForbidden        = "forbidden"
	codeNotFound         = "not_found"
	codeRateLimited      = "rate_limit_exceeded"
	codeInternal         = "internal_server_error"
	codeUnavailable      = "service_unavailable"
	codeInvalidPolicy    = "invalid_policy"
	codeIdempotency      = "idempotency_conflict"
	codeTooLarge         = "payload_too_large"
	codeMethodNotAllowed = "method_not_allowed"
	codeUnsupportedMedia = "unsupported_media_type"
	codeNotImplemented   = "not_implemented"
)

// apiError is an error response: status, code and a message safe to show
// the client. err, if set, is the internal cause, logged but never sent.
type apiError struct {
	status int
	code   string
	msg    string
	err    error
	// receiptID, if set, is the receipt recording the refusal, sent as
	// details.receipt_id.
	receiptID string
}

func (e *apiError) Error() string {
	if e.err != nil {
		return e.code + ": " + e.msg + ": " + e.err.Error()
	}
	return e.code + ": " + e.msg
}

func (e *apiError) Unwrap() error { return e.err }

// errorf returns an apiError with a client-safe message.
func errorf(status int, code, msg string) *apiError {
	return &apiError{status: status, code: code, msg: msg}
}

func badRequest(msg string) *apiError { return errorf(http.StatusBadRequest, codeValidation, msg) }

func notFound(msg string) *apiError { return errorf(http.StatusNotFound, codeNotFound, msg) }

// internal returns a 500 whose cause is logged, not sent.
func internal(err error) *apiError {
	return &apiError{status: http.StatusInternalServerError, code: codeInternal, msg: "internal server error", err: err}
}

// unavailable returns a 503 whose cause is logged, not sent.
func unavailable(msg string, err error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable, msg: msg, err: err}
}

// writeErr writes err as an error response. An *apiError is written as it
// says; anything else is a 500 with a generic message. Server errors (5xx)
// are logged with the request id and their cause.
func (s *server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = internal(err)
	}
	if ae.status >= 500 {
		st := stateOf(r)
		s.log.ErrorContext(r.Context(), "request failed",
			slog.String("request_id", st.id), slog.String("route", routeLabel(st.route)),
			slog.Int("status", ae.status), slog.Any("error", ae.err))
	}
	s.writeErrorDetails(w, r, ae.status, ae.code, ae.msg, ae.receiptID)
}

// errorBody is the JSON error envelope, compatible with OAP's: error
// {code, message, details} and a timestamp.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details struct {
			RequestID string `json:"request_id"`
			ReceiptID string `json:"receipt_id,omitempty"`
		} `json:"details"`
	} `json:"error"`
	Timestamp string `json:"timestamp"`
}

// writeError writes the JSON error envelope with status.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	s.writeErrorDetails(w, r, status, code, msg, "")
}

// writeErrorDetails writes the JSON error envelope with status and, if
// not empty, the id of the receipt recording the refusal.
func (s *server) writeErrorDetails(w http.ResponseWriter, r *http.Request, status int, code, msg, receiptID string) {
	var body errorBody
	body.Error.Code = code
	body.Error.Message = msg
	body.Error.Details.RequestID = stateOf(r).id
	body.Error.Details.ReceiptID = receiptID
	body.Timestamp = time.Now().UTC().Format(time.RFC3339)
	writeJSON(w, status, body)
}

// writeJSON writes v as JSON with status. HTML escaping is off so that
// raw receipts (json.RawMessage) are written byte for byte as signed.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only values of this package are encoded; this cannot happen
		// for them, but never send half a body.
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal_server_error","message":"internal server error"}}` + "\n")
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
