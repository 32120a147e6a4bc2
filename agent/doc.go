// Package agent owns everything that runs on a node: the SSH server
// (ServeSSH, RunSSHD) that is a container node's PID 1 and the only way the
// controller reaches the node; the bootstrap (RunBootstrap) that brings a
// node's image up to its recipe; and the agent daemon (RunServe, Daemon)
// that reports the node's status, forms the cluster (the head and the
// workers that join it) and runs task executions (POST /v1/exec, exec.go),
// each in a process group that dies with its controller's request. docs/node-protocol.md is their contract with the
// controller; api.go holds the types and constants both sides share.
//
// The server speaks the subset of SSH that skyward needs: public-key
// authentication against an authorized_keys file, exec, shell, pty-req,
// window-change, env, signal, the sftp subsystem, keepalives, and
// direct-tcpip to loopback destinations only. Every command runs in a
// process group of its own, and that whole group is killed with SIGKILL when
// the command's leader exits, when the channel closes or when the client goes
// away, so nothing keeps running after a session ends. A program that must
// outlive its session (a daemon) starts itself in a new session, for example
// with setsid(1), and redirects its output away from the session's pipes;
// `skyward agent serve -detach` does that.
//
// All child processes of this package are started and waited for by one
// reaper (see proc.go). When the reaper reaps every child (as PID 1, or when
// SSHDConfig.ReapChildren is set), nothing else in the process may wait for
// children: code added to this package starts processes through the reaper,
// never with os/exec. The bootstrap's commands go through it too, although
// the bootstrap runs in a process of its own.
//
// The package must not import provider SDKs (Docker, AWS, RunPod) or any
// controller-side package: it ships inside the binary copied to every node,
// so keep its dependencies small. A test enforces this with go list -deps.
package agent
