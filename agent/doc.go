// Package agent owns everything that runs on a node. Today that is the SSH
// server (ServeSSH, RunSSHD) that is a container node's PID 1 and the only
// way the controller reaches the node; later it will also hold the task
// worker and cluster membership (head and joiners).
//
// The server speaks the subset of SSH that skyward needs: public-key
// authentication against an authorized_keys file, exec, shell, pty-req,
// window-change, env, signal, the sftp subsystem, keepalives, and
// direct-tcpip to loopback destinations only. Every command runs in a
// process group of its own, and that whole group is killed with SIGKILL when
// the command's leader exits, when the channel closes or when the client goes
// away, so nothing keeps running after a session ends. A program that must
// outlive its session (a daemon) starts itself in a new session, for example
// with setsid(1), and redirects its output away from the session's pipes.
//
// All child processes of this package are started and waited for by one
// reaper (see proc.go). When the reaper reaps every child (as PID 1, or when
// SSHDConfig.ReapChildren is set), nothing else in the process may wait for
// children: code added to this package starts processes through the reaper,
// never with os/exec.
//
// The package must not import provider SDKs (Docker, AWS, RunPod) or any
// controller-side package: it ships inside the binary copied to every node,
// so keep its dependencies small. A test enforces this with go list -deps.
package agent
