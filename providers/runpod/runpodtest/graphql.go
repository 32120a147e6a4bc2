package runpodtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// graphqlRequest is the body of a POST to /graphql.
type graphqlRequest struct {
	Query     string          `json:"query"`
	Variables json.RawMessage `json:"variables"`
}

// graphqlError is one entry of a GraphQL response's errors, with
// RunPod's error code in extensions.code.
type graphqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// rootField finds the first field of the operation's selection set:
// gpuTypes, myself, createCluster or deleteCluster. The emulator does not
// parse GraphQL; it answers each root field with every field of its type
// rather than the selection, which decoders of the selection ignore.
var rootField = regexp.MustCompile(`^\s*(?:(?:query|mutation)\s*[A-Za-z_0-9]*\s*(?:\([^)]*\))?\s*)?\{\s*([A-Za-z_][A-Za-z_0-9]*)`)

func (s *Server) graphql(w http.ResponseWriter, r *http.Request) {
	body, err := readAll(r.Body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []graphqlError{{Message: err.Error()}}})
		return
	}
	var req graphqlRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []graphqlError{{Message: "invalid request: " + err.Error()}}})
		return
	}
	m := rootField.FindStringSubmatch(req.Query)
	if m == nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []graphqlError{{Message: "cannot parse the query"}}})
		return
	}
	field := m[1]
	s.record("graphql " + field)
	var vars struct {
		Input json.RawMessage `json:"input"`
		ID    string          `json:"id"`
	}
	if len(req.Variables) > 0 {
		json.Unmarshal(req.Variables, &vars)
	}
	var data any
	var gerr *graphqlError
	switch field {
	case "gpuTypes":
		data = s.gpus
	case "myself":
		// The account, its pods and its Instant Clusters. RunPod's
		// Terraform provider reads one cluster as
		// myself { cluster(input: {id}) { ... pods { clusterIdx clusterIp } } };
		// the list of them is modelled on it as myself { clusters }.
		s.mu.Lock()
		cls := make([]Cluster, 0, len(s.clusters))
		for _, c := range s.clusters {
			cls = append(cls, s.clusterView(c))
		}
		s.mu.Unlock()
		sort.Slice(cls, func(i, j int) bool { return cls[i].Name < cls[j].Name })
		data = map[string]any{"id": "user_" + s.id, "clusters": cls}
	case "createCluster":
		var in CreateClusterInput
		if err := json.Unmarshal(vars.Input, &in); err != nil {
			gerr = &graphqlError{Message: "invalid input: " + err.Error()}
			break
		}
		c, err := s.createCluster(r, in)
		if err != nil {
			gerr = &graphqlError{Message: err.Error()}
			if strings.HasPrefix(err.Error(), "SUPPLY_CONSTRAINT") {
				gerr.Extensions = map[string]any{"code": "SUPPLY_CONSTRAINT"}
			}
			break
		}
		data = c
	case "deleteCluster":
		var in struct {
			ID string `json:"id"`
		}
		json.Unmarshal(vars.Input, &in)
		if in.ID == "" {
			in.ID = vars.ID
		}
		if err := s.deleteCluster(r, in.ID); err != nil {
			gerr = &graphqlError{Message: err.Error()}
			break
		}
		data = true
	default:
		gerr = &graphqlError{Message: fmt.Sprintf("Cannot query field %q on type \"Query\".", field)}
	}
	if gerr != nil {
		writeJSON(w, http.StatusOK, map[string]any{"data": nil, "errors": []graphqlError{*gerr}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{field: data}})
}

// CreateClusterInput is the input of the createCluster mutation, as
// RunPod's Terraform provider sends it.
type CreateClusterInput struct {
	ClusterName       string `json:"clusterName"`
	Type              string `json:"type"`
	GPUTypeID         string `json:"gpuTypeId"`
	PodCount          int    `json:"podCount"`
	GPUCountPerPod    int    `json:"gpuCountPerPod"`
	ImageName         string `json:"imageName"`
	ContainerDiskInGb int    `json:"containerDiskInGb,omitempty"`
	// Ports is one string, "22/tcp,8888/http", in the GraphQL API.
	Ports         string     `json:"ports,omitempty"`
	Env           []envEntry `json:"env,omitempty"`
	DataCenterIDs []string   `json:"dataCenterIds,omitempty"`
}

type envEntry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// createCluster creates the cluster's network and its pods, all in one
// data center, as an Instant Cluster is. When a pod cannot be created the
// cluster is removed again.
func (s *Server) createCluster(r *http.Request, in CreateClusterInput) (Cluster, error) {
	ctx := r.Context()
	if in.PodCount < 2 {
		return Cluster{}, errors.New("an Instant Cluster has at least 2 pods")
	}
	if in.GPUTypeID == "" || in.GPUCountPerPod < 1 || in.GPUCountPerPod > 8 {
		return Cluster{}, errors.New("an Instant Cluster needs gpuTypeId and gpuCountPerPod between 1 and 8")
	}
	if in.ClusterName == "" {
		return Cluster{}, errors.New("clusterName is required")
	}
	s.mu.Lock()
	dc := ""
	candidates := in.DataCenterIDs
	if len(candidates) == 0 {
		candidates = s.dcs
	}
	for _, c := range candidates {
		if slices.Contains(s.dcs, c) && !s.faults.noCapacity[c] {
			dc = c
			break
		}
	}
	s.mu.Unlock()
	if dc == "" {
		return Cluster{}, errors.New(errNoCapacity)
	}
	c := &cluster{api: Cluster{ID: randomID(7), Name: in.ClusterName, Type: in.Type, PodCount: in.PodCount,
		GPUCountPerPod: in.GPUCountPerPod, GPUTypeID: in.GPUTypeID}}
	netID, err := s.createNetwork(ctx, c.api.ID)
	if err != nil {
		return Cluster{}, err
	}
	c.network = netID
	s.mu.Lock()
	s.clusters[c.api.ID] = c
	s.mu.Unlock()
	env := map[string]string{}
	for _, e := range in.Env {
		env[e.Key] = e.Value
	}
	var ports []string
	for _, p := range strings.Split(in.Ports, ",") {
		if p = strings.TrimSpace(p); p != "" {
			ports = append(ports, p)
		}
	}
	for i := range in.PodCount {
		podEnv := map[string]string{"NODE_RANK": fmt.Sprint(i), "NUM_NODES": fmt.Sprint(in.PodCount)}
		for k, v := range env {
			podEnv[k] = v
		}
		p, _, err := s.createPod(ctx, CreatePodInput{Name: fmt.Sprintf("%s-%d", in.ClusterName, i), ImageName: in.ImageName,
			GPUTypeIDs: []string{in.GPUTypeID}, GPUCount: in.GPUCountPerPod, ContainerDiskInGb: in.ContainerDiskInGb,
			DataCenterIDs: []string{dc}, Ports: ports, Env: podEnv}, &member{cluster: c, idx: i})
		if err != nil {
			s.deleteCluster(r, c.api.ID)
			return Cluster{}, err
		}
		s.mu.Lock()
		c.api.Pods = append(c.api.Pods, p)
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clusterView(c), nil
}

// deleteCluster terminates the cluster's pods and removes its network.
func (s *Server) deleteCluster(r *http.Request, id string) error {
	ctx := r.Context()
	s.mu.Lock()
	c, ok := s.clusters[id]
	var pods []string
	if ok {
		delete(s.clusters, id)
		for _, p := range s.pods {
			if p.cluster == id {
				pods = append(pods, p.api.ID)
			}
		}
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("cluster %s not found", id)
	}
	var errs []error
	for _, p := range pods {
		errs = append(errs, s.deletePod(ctx, p))
	}
	errs = append(errs, s.removeNetwork(ctx, c.network))
	return errors.Join(errs...)
}
