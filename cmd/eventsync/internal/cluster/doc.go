// Package cluster holds the tests and benchmarks that run EventSync's
// services against a three-node JetStream cluster (in the test process, or
// as nats-server processes that can be killed) with every stream at three
// replicas, and take nodes away under load. It has no code of its own.
package cluster
