package runpod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/skyward-sh/skyward/providers"
)

// errUnauthorized is returned (wrapped) when RunPod refuses the API key.
var errUnauthorized = errors.New("RunPod refused the API key (401 Unauthorized); set api_key or RUNPOD_API_KEY to a valid key")

// errNoCapacity is returned (wrapped) when no machine fits the request in
// the data centers asked for.
var errNoCapacity = errors.New("no capacity")

// apiClient talks to RunPod's REST API v1 and its GraphQL API with plain
// net/http. Transient failures (429, 5xx, a dropped connection) are
// retried with a bounded exponential backoff; the key is sent only in the
// Authorization header and never appears in an error.
type apiClient struct {
	restURL, graphqlURL string
	key                 string
	http                *http.Client
	// attempts bounds the tries of one request; backoff is the first
	// wait between them, doubled each time up to maxBackoff.
	attempts   int
	backoff    time.Duration
	maxBackoff time.Duration
}

// apiError is an answer of RunPod that is not a success.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// capacityMessage reports whether RunPod's message says no machine is
// free: GraphQL's SUPPLY_CONSTRAINT code, whose message REST v1 passes on
// ("There are no longer any instances available with the requested
// specifications").
func capacityMessage(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "supply_constraint") || strings.Contains(m, "no longer any instances available") ||
		strings.Contains(m, "no instances currently available")
}

// retryable reports whether a status is worth another try.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// rest calls method path on the REST API with in as the JSON body (nil:
// none) and decodes the answer into out (nil: ignore it). A 404 is
// returned wrapping providers.ErrNotFound.
func (c *apiClient) rest(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
	}
	b, err := c.do(ctx, method, c.restURL+path, body)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return fmt.Errorf("%s %s: %w", method, path, providers.ErrNotFound)
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if out != nil && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
		}
	}
	return nil
}

// graphqlError is one error of a GraphQL answer.
type graphqlError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

// query runs a GraphQL operation and decodes its data into out.
func (c *apiClient) query(ctx context.Context, op string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": op, "variables": vars})
	if err != nil {
		return err
	}
	name := opName(op)
	b, err := c.do(ctx, http.MethodPost, c.graphqlURL, body)
	if err != nil {
		return fmt.Errorf("graphql %s: %w", name, err)
	}
	var res struct {
		Data   json.RawMessage `json:"data"`
		Errors []graphqlError  `json:"errors"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("graphql %s: decode the answer: %w", name, err)
	}
	if len(res.Errors) > 0 {
		e := res.Errors[0]
		if e.Extensions.Code == "SUPPLY_CONSTRAINT" || capacityMessage(e.Message) {
			return fmt.Errorf("graphql %s: %w: %s", name, errNoCapacity, oneLine(e.Message))
		}
		if e.Extensions.Code == "UNAUTHENTICATED" {
			return fmt.Errorf("graphql %s: %w", name, errUnauthorized)
		}
		return fmt.Errorf("graphql %s: %s", name, oneLine(e.Message))
	}
	if out != nil {
		if err := json.Unmarshal(res.Data, out); err != nil {
			return fmt.Errorf("graphql %s: decode the data: %w", name, err)
		}
	}
	return nil
}

// opName is the operation's name ("mutation CreateCluster(...)" gives
// CreateCluster), for messages.
func opName(op string) string {
	f := strings.FieldsFunc(op, func(r rune) bool { return r == ' ' || r == '\n' || r == '\t' || r == '(' || r == '{' })
	if len(f) >= 2 && (f[0] == "query" || f[0] == "mutation") {
		return f[1]
	}
	return "query"
}

// do sends one request, retrying transient failures, and returns the
// body of a 2xx answer. A non-2xx answer is an *apiError (401 and 403
// wrap errUnauthorized; a capacity message wraps errNoCapacity).
func (c *apiClient) do(ctx context.Context, method, url string, body []byte) ([]byte, error) {
	delay := c.backoff
	var last error
	for attempt := 1; ; attempt++ {
		b, status, retryAfter, err := c.once(ctx, method, url, body)
		switch {
		case err == nil && status/100 == 2:
			return b, nil
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			last = err
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return nil, errUnauthorized
		default:
			ae := &apiError{Status: status, Message: errorMessage(b)}
			if capacityMessage(ae.Message) {
				return nil, fmt.Errorf("%w: %s", errNoCapacity, ae.Message)
			}
			if !retryable(status) {
				return nil, ae
			}
			last = ae
		}
		if attempt >= c.attempts {
			return nil, fmt.Errorf("%w (gave up after %d attempts)", last, attempt)
		}
		wait := delay
		if retryAfter > 0 {
			wait = min(retryAfter, c.maxBackoff)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		delay = min(2*delay, c.maxBackoff)
	}
}

// once sends the request once.
func (c *apiClient) once(ctx context.Context, method, url string, body []byte) ([]byte, int, time.Duration, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return nil, 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, 0, scrub(err, c.key)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, 0, 0, scrub(err, c.key)
	}
	var ra time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		ra = time.Duration(s) * time.Second
	}
	return b, resp.StatusCode, ra, nil
}

// errorMessage is the message of an error body: REST v1's
// {"error": "...", "status": N}, a GraphQL errors list, or the text.
func errorMessage(b []byte) string {
	var rest struct {
		Error   string         `json:"error"`
		Message string         `json:"message"`
		Errors  []graphqlError `json:"errors"`
	}
	if json.Unmarshal(b, &rest) == nil {
		switch {
		case rest.Error != "":
			return oneLine(rest.Error)
		case rest.Message != "":
			return oneLine(rest.Message)
		case len(rest.Errors) > 0:
			return oneLine(rest.Errors[0].Message)
		}
	}
	return oneLine(string(b))
}

// oneLine keeps the first line of s, at most 300 bytes.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// scrub removes the key from a transport error, should a URL or a header
// ever carry it there.
func scrub(err error, key string) error {
	if key == "" || !strings.Contains(err.Error(), key) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), key, "(sensitive value)"))
}
