module github.com/eventsync/eventsync/services/query

go 1.26.0

require (
	github.com/eventsync/eventsync/pkg v0.0.0
	github.com/go-chi/chi/v5 v5.5.0
	github.com/go-json-experiment/json v1.27.2
)

require github.com/google/uuid v1.6.0 // indirect

replace github.com/eventsync/eventsync/pkg => ../../pkg
