package agent

import (
	"encoding/json"
	"time"
)

// Paths and addresses shared by the agent and the controller; see
// docs/node-protocol.md.
const (
	// Root is the directory skyward keeps everything in on a node.
	Root = "/opt/skyward"
	// ControlAddr is where the agent's control API listens (loopback only).
	ControlAddr = "127.0.0.1:7071"
	// ClusterPort is where the head accepts joins on the private network.
	ClusterPort = 7070
	// StoreClientPort and StorePeerPort are where the members of the
	// pool's collections store listen on the private network (TLS).
	StoreClientPort = 7072
	StorePeerPort   = 7073
)

// Version is the version the agent reports in its status. The CLI sets it
// at start, before any agent runs; it is not safe to change afterwards.
var Version = "dev"

// Config is the agent's configuration, the JSON object of
// /opt/skyward/agent.json.
type Config struct {
	Pool     string `json:"pool"`
	Node     int    `json:"node"` // 0 is the head
	NumNodes int    `json:"num_nodes"`
	// HeadAddr is node 0's private address, without a port.
	HeadAddr string `json:"head_addr"`
	// ClusterPort is the head's cluster API port. On the head, 0 picks a
	// free port (for tests).
	ClusterPort int `json:"cluster_port"`
	// ControlAddr is host:port of the control API, a loopback IP address;
	// "" means ControlAddr.
	ControlAddr string `json:"control_addr"`
	// Token is the pool's secret: workers present it to join. It is never
	// logged.
	Token       string            `json:"token"`
	Concurrency int               `json:"concurrency"`
	Env         map[string]string `json:"env"`
	NodeIPs     []string          `json:"node_ips,omitempty"`
	// TTL, when set ("12s", "2h"), is the node's hard lifetime from its
	// boot (the start of its PID 1): the agent shuts the node down then,
	// even with no controller left. A node started again gets a new one.
	TTL string `json:"ttl,omitempty"`
	// Replicas is how many members the pool's collections store has, on
	// nodes 0 to Replicas-1 (at most one a node); 0 means no store.
	Replicas int `json:"replicas,omitempty"`
	// StoreClientPort and StorePeerPort override the store's ports; 0
	// means StoreClientPort and StorePeerPort (tests set others).
	StoreClientPort int `json:"store_client_port,omitempty"`
	StorePeerPort   int `json:"store_peer_port,omitempty"`
}

// StoreInfo is /opt/skyward/store.json, written by the agent once it knows
// where the pool's store members listen: what `skyward kv` and the other
// collection commands on the node connect to.
type StoreInfo struct {
	Pool string `json:"pool"`
	// Endpoints are the members' client URLs, node 0 first.
	Endpoints []string `json:"endpoints"`
	// Nodes are the members' node indexes, in the order of Endpoints.
	Nodes []int `json:"nodes"`
}

// Member is one node the head knows.
type Member struct {
	Node     int       `json:"node"`
	Addr     string    `json:"addr"`
	LastSeen time.Time `json:"last_seen"`
}

// Status is what GET /v1/status answers.
type Status struct {
	Pool      string    `json:"pool"`
	Node      int       `json:"node"`
	NumNodes  int       `json:"num_nodes"`
	IsHead    bool      `json:"is_head"`
	Version   string    `json:"version"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	// Joined is true once the head accepted this node; always true on the
	// head.
	Joined bool `json:"joined"`
	// Members is set on the head only, in node order, the head first.
	Members []Member `json:"members,omitempty"`
}

// PhaseLine is one JSON line of `skyward agent bootstrap` output: a phase's
// status (Type "phase"), one line of a command's output (Type "output") or,
// with -start, the start of the agent after the phases (Type "agent",
// Status "starting").
type PhaseLine struct {
	Type       string `json:"type"`
	Phase      string `json:"phase"`
	Status     string `json:"status,omitempty"` // started, completed, skipped, failed
	Stream     string `json:"stream,omitempty"` // stdout or stderr
	Line       string `json:"line,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"` // completed only; at least 1
	ExitCode   int    `json:"exit_code,omitempty"`   // failed only; at least 1
	Error      string `json:"error,omitempty"`       // failed only
}

// Recipe is recipe.json, the first entry of the bootstrap's tar stream.
type Recipe struct {
	Env      map[string]string `json:"env"`
	Apt      []string          `json:"apt"`
	Pip      []string          `json:"pip"`
	Setup    []string          `json:"setup"`
	Includes bool              `json:"includes"`
}

// ExecRequest is the body of POST /v1/exec: one execution of a task
// (docs/node-protocol.md).
type ExecRequest struct {
	ID     string `json:"id"`
	Task   string `json:"task"`
	Script string `json:"script,omitempty"` // run with /bin/sh -c
	// Argv is run as is; exclusive with Script.
	Argv []string          `json:"argv,omitempty"`
	Env  map[string]string `json:"env,omitempty"`
	// Shard is this node's items, a JSON array, written to the file named
	// by SKYWARD_SHARD_FILE; nil means no shard.
	Shard     json.RawMessage `json:"shard,omitempty"`
	TimeoutMS int64           `json:"timeout_ms,omitempty"`
}

// ExecLine is one JSON line of the POST /v1/exec answer.
type ExecLine struct {
	Type string `json:"type"` // started, output, exit
	// started
	PID int `json:"pid,omitempty"`
	// output
	Stream string `json:"stream,omitempty"` // stdout or stderr
	Line   string `json:"line,omitempty"`
	// exit
	ExitCode   int     `json:"exit_code"`
	DurationMS int64   `json:"duration_ms,omitempty"`
	Result     *string `json:"result,omitempty"`
	TimedOut   bool    `json:"timed_out,omitempty"`
	Error      string  `json:"error,omitempty"`
}
