package runpodtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/client"
)

// LabelServer is the label, on every container and network the emulator
// creates, whose value is the id of the server that created it.
const LabelServer = "runpodtest.server"

// GPUType is one entry of the GraphQL gpuTypes list.
type GPUType struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	MemoryInGb  int    `json:"memoryInGb"`
}

// DefaultGPUTypes are the GPU types the emulator offers: a few of
// RunPod's real ids.
var DefaultGPUTypes = []GPUType{
	{ID: "NVIDIA GeForce RTX 4090", DisplayName: "RTX 4090", MemoryInGb: 24},
	{ID: "NVIDIA RTX A5000", DisplayName: "RTX A5000", MemoryInGb: 24},
	{ID: "NVIDIA RTX A6000", DisplayName: "RTX A6000", MemoryInGb: 48},
	{ID: "NVIDIA A100 80GB PCIe", DisplayName: "A100 PCIe", MemoryInGb: 80},
	{ID: "NVIDIA H100 80GB HBM3", DisplayName: "H100 SXM", MemoryInGb: 80},
	{ID: "NVIDIA L4", DisplayName: "L4", MemoryInGb: 24},
}

// DefaultDataCenters are the data centers the emulator has, in the order
// it fills them when a request names none: real RunPod ids.
var DefaultDataCenters = []string{"EU-RO-1", "US-KS-2", "US-TX-3"}

// cpuFlavors are RunPod's CPU pod flavours and their GB of RAM per vCPU
// (compute, general purpose and memory optimised).
var cpuFlavors = map[string]float64{"cpu3c": 2, "cpu3g": 4, "cpu3m": 8, "cpu5c": 2, "cpu5g": 4, "cpu5m": 8}

// Options configure a server.
type Options struct {
	// Key is the API key requests must carry as "Authorization: Bearer
	// KEY". It must not be empty.
	Key string
	// GPUTypes and DataCenters default to DefaultGPUTypes and
	// DefaultDataCenters.
	GPUTypes    []GPUType
	DataCenters []string
	// Docker is the engine the pods run on; nil means one from the
	// environment (DOCKER_HOST).
	Docker *client.Client
	// BootDelay is how long a pod's container runs before the pod shows
	// its public IP and port mappings; 0 means 300ms.
	BootDelay time.Duration
}

// Server is the emulator's state and its HTTP handler. Build it with New;
// its methods are safe for concurrent use.
type Server struct {
	id     string
	key    string
	gpus   []GPUType
	dcs    []string
	docker *client.Client
	ownCli bool
	// bootDelay: see Options.BootDelay.
	bootDelay time.Duration

	mu        sync.Mutex
	pods      map[string]*pod
	clusters  map[string]*cluster
	templates map[string]*Template
	faults    faults
	requests  []string // "METHOD PATH" or "graphql FIELD", in order

	httpSrv *httptest.Server
}

type faults struct {
	noCapacity map[string]bool // data center -> no capacity
	failStatus int             // answer the next failN requests with this
	failN      int
	slowPolls  int // new pods hide their public endpoint for this many reads
	crashN     int // the next crashN pods exit while booting
	stall      time.Duration
}

// pod is the emulator's record of a pod: what the API reports of it and
// the container that runs it.
type pod struct {
	api       Pod
	container string // container id; "" once removed
	hidePolls int
	stopped   bool // stopped through the API (not exited by itself)
	cluster   string
	template  string
}

type cluster struct {
	api     Cluster
	network string // Docker network id
}

// Pod is a pod as REST v1 returns it (the Pod schema of the OpenAPI
// document), with the Instant Cluster fields the GraphQL Pod type has
// (clusterId, clusterIdx, clusterIp, as RunPod's Terraform provider reads
// them).
type Pod struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Image             string            `json:"image"`
	TemplateID        string            `json:"templateId,omitempty"`
	DesiredStatus     string            `json:"desiredStatus"`
	LastStatusChange  string            `json:"lastStatusChange,omitempty"`
	CostPerHr         float64           `json:"costPerHr"`
	GPUCount          int               `json:"gpuCount"`
	GPUTypeID         string            `json:"gpuTypeId,omitempty"`
	CPUFlavorID       string            `json:"cpuFlavorId,omitempty"`
	VCPUCount         float64           `json:"vcpuCount"`
	MemoryInGb        float64           `json:"memoryInGb"`
	ContainerDiskInGb int               `json:"containerDiskInGb"`
	Ports             []string          `json:"ports"`
	PortMappings      map[string]int    `json:"portMappings"`
	PublicIP          string            `json:"publicIp"`
	Env               map[string]string `json:"env"`
	Interruptible     bool              `json:"interruptible"`
	MachineID         string            `json:"machineId"`
	DataCenterID      string            `json:"dataCenterId,omitempty"`
	ClusterID         string            `json:"clusterId,omitempty"`
	ClusterIdx        *int              `json:"clusterIdx,omitempty"`
	ClusterIP         string            `json:"clusterIp,omitempty"`
}

// Cluster is an Instant Cluster as the GraphQL API returns it.
type Cluster struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Type           string `json:"type"`
	PodCount       int    `json:"podCount"`
	GPUCountPerPod int    `json:"gpuCountPerPod"`
	GPUTypeID      string `json:"gpuTypeId"`
	Pods           []Pod  `json:"pods"`
}

// New builds a server. It does not listen: use Start, or serve it with
// any http.Server (it is an http.Handler).
func New(opts Options) (*Server, error) {
	if opts.Key == "" {
		return nil, errors.New("runpodtest: an API key is required")
	}
	s := &Server{id: randomID(6), key: opts.Key, gpus: opts.GPUTypes, dcs: opts.DataCenters, docker: opts.Docker,
		pods: map[string]*pod{}, clusters: map[string]*cluster{}, templates: map[string]*Template{}, faults: faults{noCapacity: map[string]bool{}}}
	s.bootDelay = opts.BootDelay
	if s.bootDelay == 0 {
		s.bootDelay = 300 * time.Millisecond
	}
	if s.gpus == nil {
		s.gpus = DefaultGPUTypes
	}
	if s.dcs == nil {
		s.dcs = DefaultDataCenters
	}
	if s.docker == nil {
		cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			return nil, fmt.Errorf("runpodtest: docker client: %w", err)
		}
		s.docker, s.ownCli = cli, true
	}
	return s, nil
}

// Start serves the emulator on a loopback port.
func (s *Server) Start() {
	s.httpSrv = httptest.NewServer(s)
}

// ID is the server's id, the value of LabelServer on its objects.
func (s *Server) ID() string { return s.id }

// URL is the REST base (http://127.0.0.1:PORT/v1) once Start has run.
func (s *Server) URL() string { return s.httpSrv.URL + "/v1" }

// GraphQLURL is the GraphQL endpoint once Start has run.
func (s *Server) GraphQLURL() string { return s.httpSrv.URL + "/graphql" }

// Close stops serving and removes every container and network the server
// created, returning what could not be removed.
func (s *Server) Close() error {
	if s.httpSrv != nil {
		s.httpSrv.Close()
	}
	err := s.removeAll(context.Background())
	if s.ownCli {
		s.docker.Close()
	}
	return err
}

// NoCapacity makes the data centers dcs have no capacity left (nothing
// given: every data center has capacity again).
func (s *Server) NoCapacity(dcs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.noCapacity = map[string]bool{}
	for _, dc := range dcs {
		s.faults.noCapacity[dc] = true
	}
}

// FailNext answers the next n authorised requests with status (429 or
// 503), as RunPod's rate limiter and its load balancer do.
func (s *Server) FailNext(status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.failStatus, s.faults.failN = status, n
}

// SlowBoot makes pods created from now on report no public IP and no port
// mappings for their first polls reads, as a pod whose machine is still
// pulling the image.
func (s *Server) SlowBoot(polls int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.slowPolls = polls
}

// CrashNext makes the next n pods created exit while they boot, as a pod
// whose image's start command fails.
func (s *Server) CrashNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.crashN = n
}

// StallCreates makes POST /pods rent the pod and then wait d (or until
// the client goes) before it answers, so that a test can kill a client
// between the pod's creation and its answer. 0 answers at once again.
func (s *Server) StallCreates(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.stall = d
}

// Terminate removes a pod behind the client's back, as a user in RunPod's
// console or a reclaimed interruptible pod: later requests for it answer
// 404.
func (s *Server) Terminate(ctx context.Context, id string) error {
	found, err := s.removePod(ctx, id)
	if !found {
		return fmt.Errorf("runpodtest: no pod %s", id)
	}
	return err
}

// Stop stops a pod behind the client's back, as RunPod does with an
// interruptible pod: it stays, with desiredStatus EXITED.
func (s *Server) Stop(ctx context.Context, id string) error {
	s.mu.Lock()
	p, ok := s.pods[id]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("runpodtest: no pod %s", id)
	}
	return s.stopPod(ctx, p, "Stopped by the emulator")
}

// Pods returns the pods the account has, sorted by name, as GET /pods
// reports them (without counting as a read of a slow pod).
func (s *Server) Pods() []Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Pod, 0, len(s.pods))
	for _, p := range s.pods {
		out = append(out, p.api)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Clusters returns the account's Instant Clusters, sorted by name.
func (s *Server) Clusters() []Cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Cluster, 0, len(s.clusters))
	for _, c := range s.clusters {
		out = append(out, s.clusterView(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Requests returns what the server was asked, in order: "METHOD /path"
// for REST and "graphql FIELD" for GraphQL.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// RunPod takes the key as a Bearer token on both APIs.
	if r.Header.Get("Authorization") != "Bearer "+s.key {
		writeJSON(w, http.StatusUnauthorized, restError{Error: "unauthorized: invalid or missing API key", Status: http.StatusUnauthorized})
		return
	}
	s.mu.Lock()
	if s.faults.failN > 0 {
		s.faults.failN--
		status := s.faults.failStatus
		s.mu.Unlock()
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		writeJSON(w, status, restError{Error: http.StatusText(status), Status: status})
		return
	}
	s.mu.Unlock()
	switch {
	case r.URL.Path == "/graphql" && r.Method == http.MethodPost:
		s.graphql(w, r)
	case strings.HasPrefix(r.URL.Path, "/v1/"):
		s.rest(w, r)
	default:
		writeJSON(w, http.StatusNotFound, restError{Error: "not found", Status: http.StatusNotFound})
	}
}

// restError is the error body of REST v1: {"error": "...", "status": N}.
type restError struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) record(what string) {
	s.mu.Lock()
	s.requests = append(s.requests, what)
	s.mu.Unlock()
}

var podPath = regexp.MustCompile(`^/v1/pods/([^/]+)(/start|/stop)?$`)

func (s *Server) rest(w http.ResponseWriter, r *http.Request) {
	s.record(r.Method + " " + r.URL.Path)
	ctx := r.Context()
	if r.URL.Path == "/v1/templates" || strings.HasPrefix(r.URL.Path, "/v1/templates/") {
		s.templatesREST(w, r)
		return
	}
	if r.URL.Path == "/v1/pods" {
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, s.listPods(ctx, r.URL.Query().Get("name")))
		case http.MethodPost:
			var in CreatePodInput
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				writeJSON(w, http.StatusBadRequest, restError{Error: "invalid request body: " + err.Error(), Status: 400})
				return
			}
			p, status, err := s.createPod(ctx, in, nil)
			if err != nil {
				writeJSON(w, status, restError{Error: "create pod: " + err.Error(), Status: status})
				return
			}
			s.mu.Lock()
			stall := s.faults.stall
			s.mu.Unlock()
			if stall > 0 {
				select {
				case <-time.After(stall):
				case <-ctx.Done():
					return
				}
			}
			writeJSON(w, http.StatusCreated, p)
		default:
			writeJSON(w, http.StatusMethodNotAllowed, restError{Error: "method not allowed", Status: 405})
		}
		return
	}
	m := podPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		writeJSON(w, http.StatusNotFound, restError{Error: "not found", Status: 404})
		return
	}
	id, action := m[1], m[2]
	s.mu.Lock()
	p, ok := s.pods[id]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, restError{Error: "pod not found", Status: 404})
		return
	}
	switch {
	case action == "" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.readPod(ctx, p, true))
	case action == "" && r.Method == http.MethodDelete:
		if err := s.deletePod(ctx, id); err != nil {
			writeJSON(w, http.StatusInternalServerError, restError{Error: err.Error(), Status: 500})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case action == "/stop" && r.Method == http.MethodPost:
		if err := s.stopPod(ctx, p, "Stopped by user"); err != nil {
			writeJSON(w, http.StatusInternalServerError, restError{Error: err.Error(), Status: 500})
			return
		}
		writeJSON(w, http.StatusOK, s.readPod(ctx, p, false))
	case action == "/start" && r.Method == http.MethodPost:
		if err := s.startPod(ctx, p); err != nil {
			writeJSON(w, http.StatusInternalServerError, restError{Error: err.Error(), Status: 500})
			return
		}
		writeJSON(w, http.StatusOK, s.readPod(ctx, p, false))
	default:
		writeJSON(w, http.StatusMethodNotAllowed, restError{Error: "method not allowed", Status: 405})
	}
}

// CreatePodInput is the body of POST /v1/pods (PodCreateInput of the
// OpenAPI document), the fields the emulator models.
type CreatePodInput struct {
	Name              string            `json:"name"`
	ImageName         string            `json:"imageName"`
	TemplateID        string            `json:"templateId,omitempty"`
	CloudType         string            `json:"cloudType,omitempty"`
	ComputeType       string            `json:"computeType,omitempty"`
	GPUTypeIDs        []string          `json:"gpuTypeIds,omitempty"`
	GPUCount          int               `json:"gpuCount,omitempty"`
	CPUFlavorIDs      []string          `json:"cpuFlavorIds,omitempty"`
	VCPUCount         int               `json:"vcpuCount,omitempty"`
	MinRAMPerGPU      int               `json:"minRAMPerGPU,omitempty"`
	MinVCPUPerGPU     int               `json:"minVCPUPerGPU,omitempty"`
	ContainerDiskInGb int               `json:"containerDiskInGb,omitempty"`
	DataCenterIDs     []string          `json:"dataCenterIds,omitempty"`
	Ports             []string          `json:"ports,omitempty"`
	Env               map[string]string `json:"env,omitempty"`
	SupportPublicIP   *bool             `json:"supportPublicIp,omitempty"`
	Interruptible     bool              `json:"interruptible,omitempty"`
}

// errNoCapacity is RunPod's answer when no machine fits: GraphQL gives it
// the code SUPPLY_CONSTRAINT; REST v1 passes the same message on.
const errNoCapacity = "SUPPLY_CONSTRAINT: There are no longer any instances available with the requested specifications. Please refresh and try again."

// member places a pod in a cluster.
type member struct {
	cluster *cluster
	idx     int
}

// createPod checks in like RunPod does, picks a data center with
// capacity and starts the pod's container. It returns an HTTP status with
// its error.
func (s *Server) createPod(ctx context.Context, in CreatePodInput, m *member) (Pod, int, error) {
	if in.TemplateID != "" {
		// The template gives what the request leaves out.
		s.mu.Lock()
		t, ok := s.templates[in.TemplateID]
		var tc Template
		if ok {
			tc = *t
		}
		s.mu.Unlock()
		if !ok {
			return Pod{}, 400, fmt.Errorf("invalid templateId %q", in.TemplateID)
		}
		if in.ImageName == "" {
			in.ImageName = tc.ImageName
		}
		if len(in.Ports) == 0 {
			in.Ports = tc.Ports
		}
		if in.ContainerDiskInGb == 0 {
			in.ContainerDiskInGb = tc.ContainerDiskInGb
		}
		env := map[string]string{}
		for k, v := range tc.Env {
			env[k] = v
		}
		for k, v := range in.Env {
			env[k] = v
		}
		in.Env = env
	}
	if in.ImageName == "" {
		return Pod{}, 400, errors.New("imageName is required")
	}
	p := Pod{ID: randomID(7), Name: in.Name, Image: in.ImageName, DesiredStatus: "RUNNING", Ports: in.Ports,
		ContainerDiskInGb: in.ContainerDiskInGb, Env: in.Env, Interruptible: in.Interruptible, MachineID: randomID(6),
		LastStatusChange: "Rented by User: " + time.Now().UTC().Format(time.RFC1123)}
	if p.ContainerDiskInGb == 0 {
		p.ContainerDiskInGb = 50
	}
	if p.Env == nil {
		p.Env = map[string]string{}
	}
	switch strings.ToUpper(in.ComputeType) {
	case "", "GPU":
		if len(in.GPUTypeIDs) == 0 {
			return Pod{}, 400, errors.New("gpuTypeIds is required for a GPU pod")
		}
		var gpu *GPUType
		for _, id := range in.GPUTypeIDs {
			if i := slices.IndexFunc(s.gpus, func(g GPUType) bool { return g.ID == id }); i >= 0 {
				gpu = &s.gpus[i]
				break
			}
		}
		if gpu == nil {
			return Pod{}, 400, fmt.Errorf("invalid gpuTypeIds %q", in.GPUTypeIDs)
		}
		p.GPUTypeID, p.GPUCount = gpu.ID, max(in.GPUCount, 1)
		p.VCPUCount = float64(p.GPUCount * max(in.MinVCPUPerGPU, 4))
		p.MemoryInGb = float64(p.GPUCount * max(in.MinRAMPerGPU, 16))
		p.CostPerHr = 0.5 * float64(p.GPUCount)
	case "CPU":
		if in.Interruptible {
			return Pod{}, 400, errors.New("CPU pods cannot be interruptible")
		}
		flavor := "cpu3c"
		if len(in.CPUFlavorIDs) > 0 {
			flavor = in.CPUFlavorIDs[0]
		}
		ratio, ok := cpuFlavors[flavor]
		if !ok {
			return Pod{}, 400, fmt.Errorf("invalid cpuFlavorIds %q", in.CPUFlavorIDs)
		}
		p.CPUFlavorID, p.VCPUCount = flavor, float64(max(in.VCPUCount, 2))
		p.MemoryInGb = p.VCPUCount * ratio
		p.CostPerHr = 0.03 * p.VCPUCount
	default:
		return Pod{}, 400, fmt.Errorf("invalid computeType %q", in.ComputeType)
	}
	if in.Interruptible {
		p.CostPerHr /= 2
	}
	s.mu.Lock()
	dc := ""
	candidates := in.DataCenterIDs
	if len(candidates) == 0 {
		candidates = s.dcs
	}
	for _, c := range candidates {
		if !slices.Contains(s.dcs, c) {
			s.mu.Unlock()
			return Pod{}, 400, fmt.Errorf("invalid dataCenterIds %q", in.DataCenterIDs)
		}
		if !s.faults.noCapacity[c] {
			dc = c
			break
		}
	}
	if dc == "" {
		s.mu.Unlock()
		return Pod{}, 500, errors.New(errNoCapacity)
	}
	p.DataCenterID = dc
	p.TemplateID = in.TemplateID
	rec := &pod{api: p, hidePolls: s.faults.slowPolls, template: in.TemplateID}
	crash := s.faults.crashN > 0
	if crash {
		s.faults.crashN--
	}
	if m != nil {
		idx := m.idx
		rec.cluster = m.cluster.api.ID
		rec.api.ClusterID, rec.api.ClusterIdx = m.cluster.api.ID, &idx
	}
	s.pods[p.ID] = rec
	s.mu.Unlock()

	netID := ""
	if m != nil {
		netID = m.cluster.network
	}
	// A pod RunPod has accepted is rented whether or not the client
	// waits for the answer.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	id, ip, err := s.runContainer(rctx, rec, netID, crash)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		delete(s.pods, p.ID)
		return Pod{}, 500, err
	}
	rec.container, rec.api.ClusterIP = id, ip
	return rec.api, 0, nil
}

// listPods is GET /v1/pods: every pod of the account, or those with the
// exact name given (the "name" query parameter of ListPods).
func (s *Server) listPods(ctx context.Context, name string) []Pod {
	s.mu.Lock()
	recs := make([]*pod, 0, len(s.pods))
	for _, p := range s.pods {
		if name == "" || p.api.Name == name {
			recs = append(recs, p)
		}
	}
	s.mu.Unlock()
	out := make([]Pod, 0, len(recs))
	for _, p := range recs {
		out = append(out, s.readPod(ctx, p, true))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// readPod brings the pod's record up to date with its container and
// returns what the API shows of it. A read counts against a slow boot
// when poll is set.
func (s *Server) readPod(ctx context.Context, p *pod, poll bool) Pod {
	s.mu.Lock()
	cid := p.container
	s.mu.Unlock()
	running, booted, port, exit := false, false, 0, 0
	if cid != "" {
		running, booted, port, exit = s.inspect(ctx, cid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case running:
		p.api.DesiredStatus = "RUNNING"
	case p.stopped:
		p.api.DesiredStatus = "EXITED"
	case cid != "" && p.api.DesiredStatus == "RUNNING":
		// The container ended by itself: its start command exited.
		p.api.DesiredStatus = "EXITED"
		p.api.LastStatusChange = fmt.Sprintf("Exited with code %d: %s", exit, time.Now().UTC().Format(time.RFC1123))
	}
	p.api.PublicIP, p.api.PortMappings = "", map[string]int{}
	// RunPod maps a pod's ports once its container has started, not the
	// moment it is created: a start command that fails at once never
	// shows an endpoint.
	if running && booted && port != 0 {
		if poll && p.hidePolls > 0 {
			p.hidePolls--
		} else if p.hidePolls == 0 {
			p.api.PublicIP, p.api.PortMappings = "127.0.0.1", map[string]int{"22": port}
		}
	}
	return p.api
}

func (s *Server) deletePod(ctx context.Context, id string) error {
	_, err := s.removePod(ctx, id)
	return err
}

// removePod forgets the pod and removes its container; found says whether
// there was such a pod.
func (s *Server) removePod(ctx context.Context, id string) (found bool, err error) {
	s.mu.Lock()
	p, ok := s.pods[id]
	if ok {
		delete(s.pods, id)
		s.detach(p)
	}
	s.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, s.removeContainer(ctx, p.container)
}

// detach removes a deleted pod from its cluster's list. s.mu is held.
func (s *Server) detach(p *pod) {
	if c := s.clusters[p.cluster]; c != nil {
		c.api.Pods = slices.DeleteFunc(c.api.Pods, func(q Pod) bool { return q.ID == p.api.ID })
	}
}

func (s *Server) stopPod(ctx context.Context, p *pod, why string) error {
	s.mu.Lock()
	p.stopped = true
	p.api.DesiredStatus = "EXITED"
	p.api.LastStatusChange = why + ": " + time.Now().UTC().Format(time.RFC1123)
	cid := p.container
	s.mu.Unlock()
	return s.stopContainer(ctx, cid)
}

func (s *Server) startPod(ctx context.Context, p *pod) error {
	s.mu.Lock()
	cid := p.container
	s.mu.Unlock()
	if err := s.startContainer(ctx, cid); err != nil {
		return err
	}
	s.mu.Lock()
	p.stopped = false
	p.api.DesiredStatus = "RUNNING"
	p.api.LastStatusChange = "Started by user: " + time.Now().UTC().Format(time.RFC1123)
	s.mu.Unlock()
	return nil
}

// clusterView is the cluster with its pods as they stand. s.mu is held.
func (s *Server) clusterView(c *cluster) Cluster {
	v := c.api
	v.Pods = make([]Pod, 0, len(c.api.Pods))
	for _, p := range c.api.Pods {
		if rec := s.pods[p.ID]; rec != nil {
			v.Pods = append(v.Pods, rec.api)
		}
	}
	return v
}

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)[:n+n/2]
}

// readAll reads a request body of at most 1 MiB.
func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(io.LimitReader(r, 1<<20)) }
