package agent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzWire feeds arbitrary bodies to the agent's wire protocol: the head's
// join and member announcement, an execution request's decoding, and the
// JSON lines both sides read. Nothing panics, every answer is one the
// protocol documents, and the head admits only what it was told to.
// Seeds: testdata/fuzz/FuzzWire.
func FuzzWire(f *testing.F) {
	f.Add(`{"node":1,"addr":"10.0.0.2"}`, "1")
	f.Add(`{"node":7,"addr":"6.6.6.7"}`, "7")
	f.Add(`{"id":"t-1","task":"t","script":"echo hi","env":{"A":"1"},"shard":[1,2],"timeout_ms":5}`, "x")
	f.Add(`{"type":"phase","phase":"apt","status":"failed","exit_code":100,"error":"exit status 100"}`+"\n"+
		`{"type":"exit","exit_code":0,"result":"1\n"}`, "2")
	f.Add(`{"addr":"127.0.0.1"}`, "2")
	f.Add(`{"node":-1}`, "-1")
	// Joins of nodes not announced are refused at once.
	defer func(d time.Duration) { joinHold = d }(joinHold)
	joinHold = 0
	f.Fuzz(func(t *testing.T, body, node string) {
		d := &Daemon{
			cfg:  Config{Pool: "dev", Token: "tok", HeadAddr: "10.0.0.1"},
			logf: func(string, ...any) {}, started: time.Now(),
			members:  map[int]Member{0: {Node: 0, Addr: "10.0.0.1"}},
			expected: map[int]string{1: "127.0.0.1"},
			refused:  map[string]bool{}, execs: map[string]bool{},
		}
		serve := func(h http.HandlerFunc, method, target string, token bool) int {
			req := httptest.NewRequest(method, target, strings.NewReader(body))
			req.RemoteAddr = "127.0.0.1:4242"
			if token {
				req.Header.Set("Authorization", "Bearer tok")
			}
			req.SetPathValue("node", node)
			rec := httptest.NewRecorder()
			h(rec, req)
			if !json.Valid(rec.Body.Bytes()) {
				t.Errorf("%s %s answered non-JSON %q", method, target, rec.Body.String())
			}
			return rec.Code
		}

		// The member announcement, with and without the token.
		if code := serve(d.serveExpect, http.MethodPut, "/v1/members/x", false); code != http.StatusUnauthorized {
			t.Errorf("announcement without the token: %d", code)
		}
		switch code := serve(d.serveExpect, http.MethodPut, "/v1/members/x", true); code {
		case http.StatusOK, http.StatusBadRequest:
		default:
			t.Errorf("announcement: %d", code)
		}
		// Joins: only announced nodes, from their announced address.
		if code := serve(d.serveJoin, http.MethodPost, "/v1/join", false); code != http.StatusUnauthorized {
			t.Errorf("join without the token: %d", code)
		}
		switch code := serve(d.serveJoin, http.MethodPost, "/v1/join", true); code {
		case http.StatusOK, http.StatusBadRequest, http.StatusForbidden:
		default:
			t.Errorf("join: %d", code)
		}
		for n, m := range d.members {
			if n != 0 && (d.expected[n] == "" || !sameIP(d.expected[n], m.Addr) || m.Addr != "127.0.0.1") {
				t.Errorf("member %d at %s admitted; expected %q", n, m.Addr, d.expected[n])
			}
		}
		_ = d.status()

		// An execution request is decoded and checked, not run.
		req := httptest.NewRequest(http.MethodPost, "/v1/exec", strings.NewReader(body))
		if er, code, err := readExecRequest(httptest.NewRecorder(), req); err == nil {
			if code != http.StatusOK || er.validate() != nil || er.timeout() < 0 {
				t.Errorf("accepted execution request %+v (%d)", er, code)
			}
		} else if code != http.StatusBadRequest && code != http.StatusRequestEntityTooLarge {
			t.Errorf("refused execution request: %d", code)
		}

		// JSON lines, as the controller reads the agent's.
		const limit = 64
		ReadLines(bytes.NewReader([]byte(body)), limit, func(line string) {
			if len(line) > limit {
				t.Errorf("line of %d bytes, over the limit of %d", len(line), limit)
			}
			var pl PhaseLine
			_ = json.Unmarshal([]byte(line), &pl)
			var el ExecLine
			_ = json.Unmarshal([]byte(line), &el)
		})
	})
}
