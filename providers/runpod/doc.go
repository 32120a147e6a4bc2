// Package runpod is the RunPod provider: every node is a pod rented
// through RunPod's REST API v1 (https://rest.runpod.io/v1), with the
// pool's SSH public key in the pod's PUBLIC_KEY, port 22/tcp exposed on a
// public IP, reached as root at publicIp:portMappings["22"] with the host
// key pinned at first contact. A pool of more than one node is an Instant
// Cluster (GraphQL createCluster/deleteCluster at
// https://api.runpod.io/graphql) so that its pods share a private network,
// where workers join the head. GPU types are checked against GraphQL's
// gpuTypes at plan time.
//
// RunPod has no tags: a pool's cluster is named skyward-<lineage8>-<pool>
// and a plain pod skyward-<lineage8>-<pool>-<index>; List finds them by
// that prefix with one GET /pods and one query of the account's clusters.
//
// The client is plain net/http and encoding/json: RunPod publishes no Go
// SDK of its own, and the handful of calls needed do not justify a
// third-party one. It retries 429 and 5xx answers with a bounded backoff,
// tries the configured data centers in order while RunPod has no
// capacity, and never puts the API key anywhere but the Authorization
// header. Package runpodtest is an emulator of the same API for tests.
//
// RunPod's documentation marks REST v1 deprecated, with a retirement
// announced for 15 November 2026, in favour of a REST API v2 whose pod
// shapes differ (image, gpu or cpu objects, status); this provider and
// its emulator speak v1.
//
// Like every provider it never touches skyward's state or plans.
package runpod
