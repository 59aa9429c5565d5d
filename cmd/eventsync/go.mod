module github.com/eventsync/eventsync/cmd/eventsync

go 1.26

require github.com/eventsync/eventsync/pkg v0.0.0

replace github.com/eventsync/eventsync/pkg => ../../pkg
