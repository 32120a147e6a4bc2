// Package container is the provider that runs a pool's nodes as local
// containers through the Docker Engine API: on Docker, on Podman's
// Docker-compatible service (started when it is not running, with
// Podman's own API for what the compat API lacks), or on containerd
// through the nerdctl CLI, which implements the same narrow dockerAPI
// interface by running nerdctl and reading its Docker-compatible JSON. On
// Podman and nerdctl every node gets explicit nofile and nproc limits
// within skyward's own, since their defaults exceed what locked-down hosts
// grant.
//
// It owns, for a pool, one bridge network (or a shared, named network from
// the provider block) and, for a node, one container, in one of two modes.
// In ModeAgent a node container runs skyward's own agent as PID 1 in SSH
// server mode (`skyward agent sshd`); the agent binary, the SSH host key
// and the authorized key are copied into the container before it starts,
// never passed in the environment or in labels. In ModeOpenSSH it runs the
// image's own OpenSSH server, as a cloud VM does: a start script creates
// the login user with sudo, installs the authorized key, makes the host
// key and arms the ttl, and the controller pins the host key at first
// contact and uploads the agent over SSH. Either way the SSH port is
// published on 127.0.0.1 only, on a port the daemon picks. Create returns
// once the container is started; Wait inspects it until it runs with its
// port published (and, in ModeOpenSSH, its sshd greets). A bake moves the
// node's secrets to a tmpfs while the container is committed.
//
// Every object it creates carries the labels of providers.Resource.Labels,
// so that List finds a lineage's objects again with one container list and
// one network list. A shared network carries only skyward.managed and
// skyward.shared: it belongs to no lineage and is removed only once no
// skyward container uses it any more.
//
// It must not read or write skyward's state, plan anything, reach the nodes
// over SSH or bootstrap them: those are the controller's. Its API client is
// behind the unexported dockerAPI interface so that tests can fake it and
// so that the nerdctl driver can stand in for it.
package container
