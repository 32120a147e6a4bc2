// Package runpodtest is an emulator of the parts of RunPod's API that the
// runpod provider uses, for tests and for trying a pool without an
// account: the REST API v1 (POST/GET/DELETE /v1/pods, POST
// /v1/pods/{id}/start and /stop, POST/GET/DELETE /v1/templates) and the
// GraphQL API (gpuTypes, myself, createCluster, deleteCluster and the
// account's clusters).
//
// It keeps a model of an account's state (pods, templates, Instant
// Clusters, their statuses, data centers with or without capacity) and runs every pod as
// a Docker container of the pod's image, with the image's OpenSSH server
// authorising the pod's PUBLIC_KEY for root, as RunPod's own images do.
// Port 22 is published on 127.0.0.1, so pods report publicIp 127.0.0.1 and
// the published port as portMappings["22"]. The pods of one cluster share
// a Docker network, whose addresses are their clusterIp.
//
// The JSON shapes follow RunPod's public API references: the REST v1
// OpenAPI document (https://rest.runpod.io/v1/openapi.json, as mirrored by
// the runpod-sdk crate's model/v1/pod.rs) and the GraphQL queries of
// runpodctl, runpod-python and RunPod's Terraform provider (its
// resource_cluster for Instant Clusters). Where the public sources are
// silent (error bodies, the account's cluster list) the comment at the
// handler says what was chosen.
//
// Faults a test can ask for: no capacity in a data center
// (Server.NoCapacity), bursts of 429 or 503 answers (Server.FailNext),
// pods that boot slowly (Server.SlowBoot), pods that exit while booting
// (Server.CrashNext), pods removed behind the client's back, whose
// DELETE then answers 404 (Server.Terminate), and answers to POST /pods
// held back after the pod is rented (Server.StallCreates).
//
// Where it is simpler than RunPod: it does not parse GraphQL (it finds the
// operation's root field and answers with every field of its type), it
// sets no memory limit on a pod's container, and a pod's GPUs are only
// numbers.
//
// Every container and network the emulator creates carries the label
// LabelServer with the server's id and is removed by Close.
package runpodtest
