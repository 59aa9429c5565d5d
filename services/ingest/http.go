package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	jsonv2 "github.com/go-json-experiment/json"

	"github.com/eventsync/eventsync/pkg/event"
	"github.com/eventsync/eventsync/pkg/problem"
)

// Mount adds the ingest endpoints to r.
func (s *Service) Mount(r chi.Router) {
	r.Post("/v1/events", s.handleEvents(false))
	// Validate and check permissions without publishing (also
	// POST /v1/events?dry_run=true).
	r.Post("/v1/events:validate", s.handleEvents(true))
}

func (s *Service) handleEvents(validateOnly bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		dryRun := validateOnly
		// The gate authenticated the request before its body was read.
		p, err := s.producerOf(r.Context())
		if err != nil {
			problem.Write(w, s.reject(err))
			return
		}
		f, err := format(r.Header.Get("Content-Type"))
		if err != nil {
			problem.Write(w, s.reject(err))
			return
		}
		if v := r.URL.Query().Get("dry_run"); v != "" {
			d, err := strconv.ParseBool(v)
			if err != nil {
				problem.Write(w, s.reject(problem.BadParam("dry_run", "must be true or false")))
				return
			}
			dryRun = dryRun || d
		}
		body, err := s.readBody(r.Body, r.Header.Get("Content-Encoding"))
		if err != nil {
			problem.Write(w, s.reject(err))
			return
		}
		resp, err := s.ingest(r.Context(), request{producer: p, body: body, format: f, dryRun: dryRun})
		if err != nil {
			problem.Write(w, err)
			return
		}
		status := http.StatusAccepted
		if dryRun {
			status = http.StatusOK
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = jsonv2.MarshalWrite(w, resp)
	}
}

// readBody reads one request body, over HTTP or NATS, with the same
// limits on both paths: it gunzips a body sent with Content-Encoding: gzip,
// and the limit applies to the body as sent and to the decompressed body,
// so a small compressed bomb is a 413 too.
func (s *Service) readBody(r io.Reader, encoding string) ([]byte, error) {
	tooLarge := problem.New(http.StatusRequestEntityTooLarge, "too-large", "the body is larger than the limit of "+byteSize(s.cfg.MaxBody))
	// One byte over the limit tells "too large" from "exactly the limit".
	limited := func(r io.Reader, what string) ([]byte, error) {
		b, err := io.ReadAll(io.LimitReader(r, s.cfg.MaxBody+1))
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe), err == nil && int64(len(b)) > s.cfg.MaxBody:
			return nil, tooLarge
		case err != nil:
			return nil, problem.BadRequest(what + err.Error())
		}
		return b, nil
	}
	switch enc := strings.ToLower(strings.TrimSpace(encoding)); enc {
	case "", "identity":
		return limited(r, "reading the body: ")
	case "gzip":
		raw, err := limited(r, "reading the body: ")
		if err != nil {
			return nil, err
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, problem.BadRequest("the body is not valid gzip: " + err.Error())
		}
		defer zr.Close()
		return limited(zr, "the body is not valid gzip: ")
	default:
		return nil, problem.New(http.StatusUnsupportedMediaType, "unsupported-encoding", "Content-Encoding "+enc+" is not supported; send identity or gzip")
	}
}

// format maps a Content-Type to a body format; JSON is the default.
func format(contentType string) (event.Format, error) {
	if contentType == "" {
		return event.JSON, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, problem.New(http.StatusUnsupportedMediaType, "unsupported-media-type", "Content-Type "+err.Error())
	}
	switch mt {
	case "application/json", "text/plain":
		return event.JSON, nil
	case "application/x-ndjson", "application/ndjson", "application/jsonl":
		return event.NDJSON, nil
	}
	return 0, problem.New(http.StatusUnsupportedMediaType, "unsupported-media-type",
		"Content-Type must be application/json or application/x-ndjson, got "+mt)
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
