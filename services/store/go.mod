module github.com/eventsync/eventsync/services/store

go 1.26.0

require (
	github.com/eventsync/eventsync/pkg v0.0.0
	github.com/nats-io/nats.go v1.55.0
)

require (
	github.com/go-json-experiment/json v1.27.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace github.com/eventsync/eventsync/pkg => ../../pkg
