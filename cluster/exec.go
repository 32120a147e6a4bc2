package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/skyward-sh/skyward/agent"
)

// ErrLost is wrapped by Exec when the execution's outcome is unknown
// because the node or the connection to it went away, or the node's agent
// does not answer (then ErrAgentDown is wrapped too).
var ErrLost = errors.New("lost with its node")

// ExecExit is how an execution ended on its node.
type ExecExit struct {
	ExitCode int
	TimedOut bool
	Duration time.Duration
	// Result is what the task wrote to its result file; nil when it wrote
	// none.
	Result *string
	// Error says why the process could not be started, if it could not.
	Error string
}

// Exec runs one execution on the node's agent and calls output, from one
// goroutine, with every line the execution prints as it arrives. token is
// the pool's secret. The error wraps ErrLost when the node or the
// connection went away before the execution ended, and is ctx's error when
// ctx ended first (the agent then kills the execution).
func Exec(ctx context.Context, c *Client, token string, req agent.ExecRequest, output func(stream, line string)) (*ExecExit, error) {
	name := c.ep.name()
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+agent.ControlAddr+"/v1/exec", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Authorization", "Bearer "+token)
	hreq.Header.Set("Content-Type", "application/json")
	lost := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: %w (%w)", name, ErrLost, err)
	}
	resp, err := c.agentClient().Do(hreq)
	if err != nil {
		return nil, lost(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%s: exec: agent answered %s: %s", name, resp.Status, bytes.TrimSpace(msg))
	}
	var exit *ExecExit
	var bad error
	agent.ReadLines(resp.Body, maxLine+4096, func(line string) {
		var l agent.ExecLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			bad = fmt.Errorf("%s: exec: bad line from the agent: %v", name, err)
			return
		}
		switch l.Type {
		case "output":
			output(l.Stream, l.Line)
		case "exit":
			exit = &ExecExit{ExitCode: l.ExitCode, TimedOut: l.TimedOut, Duration: time.Duration(l.DurationMS) * time.Millisecond,
				Result: l.Result, Error: l.Error}
		}
	})
	switch {
	case exit != nil:
		return exit, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case bad != nil:
		return nil, bad
	}
	return nil, lost(errors.New("the agent's answer ended before the execution did"))
}

// agentClient is an HTTP client to the node's agent control API through
// this connection. Connections (SSH direct-tcpip channels) are kept and
// reused, so that many short executions cost no new channel each.
func (c *Client) agentClient() *http.Client {
	c.agentOnce.Do(func() {
		c.agentHTTP = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := c.conn.Dial("tcp", addr)
				if err != nil {
					return nil, fmt.Errorf("%w (skyward apply restarts it): %v", ErrAgentDown, err)
				}
				return conn, nil
			},
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     time.Minute,
		}}
	})
	return c.agentHTTP
}
