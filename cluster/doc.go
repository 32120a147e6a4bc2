// Package cluster owns the controller's side of nodes: generating SSH keys,
// connecting to a node over SSH with its pinned host key (Dial, DialRecord,
// WaitDial), and running commands, shells and uploads there (Client). Later
// it also holds agent upload, bootstrap and task dispatch.
//
// Host keys are always verified: a node's key is recorded when the node is
// created (or at first contact through DialRecord, whose caller must pin
// what it returns) and every later connection must present exactly that
// key. There is no silent trust on first use.
//
// The package talks to nodes only through SSH; it does not know which
// provider created them and must not import providers, state, planner or
// executor. Errors are prefixed with the node's address
// ("pool.dev.node[1]: ...") and wrap their cause.
package cluster
