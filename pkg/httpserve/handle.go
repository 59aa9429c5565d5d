package httpserve

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/eventsync/eventsync/pkg/problem"
)

// Reply is the successful answer of a handler run by Handle.
type Reply struct {
	Status  int         // 200 when zero
	Body    any         // encoded as JSON; nil answers the status without a body
	Header  http.Header // set on the answer (Location …)
	NoStore bool        // Cache-Control: no-store, for answers that carry credentials
}

// Handle adapts h, a handler that returns its answer or an error, to an
// http.HandlerFunc. It is the one place where the errors of EventSync's
// APIs become problem+json:
//
//   - a *problem.Problem in the error's chain is written as is;
//   - otherwise toProblem (nil: none) maps the error, typically a
//     domain error (not found, conflict, unavailable …) found with
//     errors.Is / errors.As; it returns nil for an error it does not know;
//   - an error nobody mapped is logged once on log and answered 500
//     without any of its text.
//
// The body is encoded before anything is written, so a body that fails to
// encode is a 500, never a truncated 200. It is encoded into a buffer the
// handler recycles: a page of 10,000 events is megabytes, and allocating it
// per request showed in CPU profiles.
func Handle(log *slog.Logger, toProblem func(*http.Request, error) *problem.Problem, h func(*http.Request) (Reply, error)) http.HandlerFunc {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var bufs bufferPool
	return func(w http.ResponseWriter, r *http.Request) {
		rep, err := h(r)
		if err != nil {
			problem.Write(w, mapError(log, toProblem, r, err))
			return
		}
		status := rep.Status
		if status == 0 {
			status = http.StatusOK
		}
		hdr := w.Header()
		if rep.NoStore {
			hdr.Set("Cache-Control", "no-store")
		}
		if rep.Body == nil {
			copyHeader(hdr, rep.Header)
			w.WriteHeader(status)
			return
		}
		buf := bufs.get()
		defer bufs.put(buf)
		if err := jsonv2.MarshalWrite(buf, rep.Body); err != nil {
			log.ErrorContext(r.Context(), "encode response", "err", err,
				"method", r.Method, "path", r.URL.Path, "request_id", RequestIDFrom(r.Context()))
			hdr.Del("Cache-Control")
			problem.Write(w, nil) // a 500 that leaks nothing
			return
		}
		hdr.Set("Content-Type", "application/json")
		copyHeader(hdr, rep.Header)
		w.WriteHeader(status)
		_, _ = w.Write(buf.Bytes())
	}
}

// mapError returns the problem err is answered with, logging err when it
// is an internal error.
func mapError(log *slog.Logger, toProblem func(*http.Request, error) *problem.Problem, r *http.Request, err error) error {
	var p *problem.Problem
	if errors.As(err, &p) && p != nil {
		return p
	}
	if toProblem != nil {
		if p := toProblem(r, err); p != nil {
			return p
		}
	}
	level := slog.LevelError
	if r.Context().Err() != nil {
		// The client went away or its deadline passed: nobody reads the
		// answer, and the error is most likely that cancellation.
		level = slog.LevelDebug
	}
	log.Log(r.Context(), level, "internal error", "err", err,
		"method", r.Method, "path", r.URL.Path, "request_id", RequestIDFrom(r.Context()))
	return nil // problem.Write answers nil with a 500 that leaks nothing
}

// copyHeader sets every value of src on dst.
func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

// maxPooledBuffer is the largest buffer kept for reuse; an outsized one
// is left to the garbage collector.
const maxPooledBuffer = 32 << 20

// bufferPool recycles response buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) get() *bytes.Buffer {
	if buf, ok := b.p.Get().(*bytes.Buffer); ok {
		return buf
	}
	return new(bytes.Buffer)
}

func (b *bufferPool) put(buf *bytes.Buffer) {
	if buf.Cap() > maxPooledBuffer {
		return
	}
	buf.Reset()
	b.p.Put(buf)
}
