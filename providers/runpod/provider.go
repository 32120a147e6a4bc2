package runpod

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/providers/internal/batch"
)

// Type is the provider type as written in HCL.
const Type = "runpod"

// Defaults of the provider block.
const (
	// DefaultEndpoint is RunPod's REST API v1.
	DefaultEndpoint = "https://rest.runpod.io/v1"
	// DefaultGraphQL is RunPod's GraphQL API, used for GPU types and
	// Instant Clusters.
	DefaultGraphQL = "https://api.runpod.io/graphql"
	// DefaultCloudType rents from RunPod's own data centers.
	DefaultCloudType = "SECURE"
	// DefaultImage is one of RunPod's own images, whose start script runs
	// OpenSSH with PUBLIC_KEY authorised for root.
	DefaultImage = "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404"
	// DefaultDiskGB is the container disk of a pool that sets no disk_gb.
	DefaultDiskGB = 20
)

// Environment variables the provider reads when its block leaves the
// argument out.
const (
	EnvAPIKey  = "RUNPOD_API_KEY"
	EnvREST    = "RUNPOD_REST_URL"
	EnvGraphQL = "RUNPOD_GRAPHQL_URL"
)

// createTimeout bounds the wait for a pod to run with its SSH port
// mapped: a GPU pod pulls a large image first.
const createTimeout = 15 * time.Minute

// Config is the decoded provider block.
type Config struct {
	// APIKey authenticates every request; "" means RUNPOD_API_KEY. It is
	// never written anywhere.
	APIKey string
	// Endpoint is the REST base; "" means RUNPOD_REST_URL, else
	// DefaultEndpoint. GraphQL is beside it: /graphql on the same host
	// (RUNPOD_GRAPHQL_URL overrides it), or DefaultGraphQL for the
	// default endpoint.
	Endpoint string
	// GraphQL overrides the GraphQL endpoint (tests).
	GraphQL string
	// CloudType is SECURE (default) or COMMUNITY.
	CloudType string
	// Image is the pods' base image; "" means DefaultImage.
	Image string
	// DataCenters are tried in order when a pod or cluster has no
	// capacity; empty lets RunPod choose.
	DataCenters []string
}

// Factory returns the factory of the RunPod provider, to register under
// Type.
func Factory() providers.Factory {
	return providers.Factory{
		Schema: hcldec.ObjectSpec{
			"api_key":      &hcldec.AttrSpec{Name: "api_key", Type: cty.String},
			"endpoint":     &hcldec.AttrSpec{Name: "endpoint", Type: cty.String},
			"cloud_type":   &hcldec.AttrSpec{Name: "cloud_type", Type: cty.String},
			"image":        &hcldec.AttrSpec{Name: "image", Type: cty.String},
			"data_centers": &hcldec.AttrSpec{Name: "data_centers", Type: cty.List(cty.String)},
		},
		New: func(cfg cty.Value) (providers.Provider, error) {
			c, err := DecodeConfig(cfg)
			if err != nil {
				return nil, err
			}
			return New(c)
		},
		Sensitive: []string{"api_key"},
		// A pod's image and cloud are fixed when it is rented. The data
		// centers only say where new pods go.
		ForceNew: []string{"image", "cloud_type"},
	}
}

// DecodeConfig turns a value conforming to Factory().Schema into a
// Config. A null cfg gives the defaults.
func DecodeConfig(cfg cty.Value) (Config, error) {
	var c Config
	fields := map[string]*string{"api_key": &c.APIKey, "endpoint": &c.Endpoint, "cloud_type": &c.CloudType, "image": &c.Image}
	set, err := providers.ConfigStrings(cfg, "runpod provider", slices.Sorted(maps.Keys(fields))...)
	if err != nil || cfg.IsNull() {
		return c, err
	}
	for name, s := range set {
		*fields[name] = s
	}
	if cfg.Type().HasAttribute("data_centers") {
		if v := cfg.GetAttr("data_centers"); !v.IsNull() {
			if !v.CanIterateElements() {
				return c, errors.New(`runpod provider: "data_centers" must be a list of strings`)
			}
			for it := v.ElementIterator(); it.Next(); {
				_, e := it.Element()
				if e.IsNull() || e.Type() != cty.String {
					return c, errors.New(`runpod provider: "data_centers" must be a list of strings`)
				}
				c.DataCenters = append(c.DataCenters, e.AsString())
			}
		}
	}
	return c, nil
}

// Provider is the RunPod provider. Build it with New; it is safe for
// concurrent use.
type Provider struct {
	api       *apiClient
	cloudType string
	image     string
	dcs       []string

	gpuMu sync.Mutex
	gpus  []gpuType // cached by gpuTypes

	// clusterMu serialises finding or creating a pool's Instant Cluster,
	// which every node of the pool asks for at once.
	clusterMu sync.Mutex
	clusterL  map[string]*sync.Mutex

	waiter *batch.Waiter[apiPod]
}

var (
	_ providers.Provider  = (*Provider)(nil)
	_ providers.Waiter    = (*Provider)(nil)
	_ providers.Validator = (*Provider)(nil)
)

// New builds a provider from cfg without contacting RunPod: Check does.
func New(cfg Config) (*Provider, error) {
	if cfg.APIKey == "" {
		cfg.APIKey = os.Getenv(EnvAPIKey)
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = os.Getenv(EnvREST)
	}
	if cfg.GraphQL == "" {
		cfg.GraphQL = os.Getenv(EnvGraphQL)
	}
	switch {
	case cfg.Endpoint == "":
		cfg.Endpoint = DefaultEndpoint
		if cfg.GraphQL == "" {
			cfg.GraphQL = DefaultGraphQL
		}
	case cfg.GraphQL == "":
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("runpod provider: endpoint %q is not an http(s) URL", cfg.Endpoint)
		}
		cfg.GraphQL = u.Scheme + "://" + u.Host + "/graphql"
	}
	if u, err := url.Parse(cfg.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("runpod provider: endpoint %q is not an http(s) URL", cfg.Endpoint)
	}
	switch strings.ToUpper(cfg.CloudType) {
	case "":
		cfg.CloudType = DefaultCloudType
	case "SECURE", "COMMUNITY":
		cfg.CloudType = strings.ToUpper(cfg.CloudType)
	default:
		return nil, fmt.Errorf(`runpod provider: cloud_type = %q is not a RunPod cloud; use "SECURE" or "COMMUNITY"`, cfg.CloudType)
	}
	if cfg.Image == "" {
		cfg.Image = DefaultImage
	}
	p := &Provider{
		api: &apiClient{restURL: strings.TrimRight(cfg.Endpoint, "/"), graphqlURL: cfg.GraphQL, key: cfg.APIKey,
			http: &http.Client{Timeout: 60 * time.Second}, attempts: 6, backoff: 500 * time.Millisecond, maxBackoff: 8 * time.Second},
		cloudType: cfg.CloudType,
		image:     cfg.Image,
		dcs:       cfg.DataCenters,
		clusterL:  map[string]*sync.Mutex{},
	}
	p.waiter = newBatchWaiter(p)
	return p, nil
}

// SetBackoff changes the first wait between retries of a request and its
// bound (tests make it short).
func (p *Provider) SetBackoff(first, max time.Duration) {
	p.api.backoff, p.api.maxBackoff = first, max
}

// Type implements providers.Provider.
func (p *Provider) Type() string { return Type }

// Capabilities implements providers.Provider. A pod makes its own host
// keys, pinned at first contact; its OpenSSH leaves commands running when
// a session ends. Pods share no private network, except the pods of one
// Instant Cluster, which report it as their PrivateIP.
func (p *Provider) Capabilities() providers.Capabilities {
	return providers.Capabilities{HostKey: providers.HostKeyFirstContact, CreateTimeout: createTimeout}
}

// Check verifies that RunPod accepts the API key.
func (p *Provider) Check(ctx context.Context) error {
	if p.api.key == "" {
		return fmt.Errorf("no API key: set api_key in the provider block or %s", EnvAPIKey)
	}
	var out struct {
		Myself struct {
			ID string `json:"id"`
		} `json:"myself"`
	}
	if err := p.api.query(ctx, `query Myself { myself { id } }`, nil, &out); err != nil {
		if errors.Is(err, errUnauthorized) {
			return errUnauthorized
		}
		return fmt.Errorf("cannot reach RunPod at %s: %w", p.api.graphqlURL, err)
	}
	return nil
}

// Create implements providers.Provider. RunPod has no tags nor an
// object for a group of pods: a pool is a pod template named
// skyward-<lineage8>-<pool> (its pods' image and port), which List finds
// by name; a pool of more than one node gets an Instant Cluster of that
// name too, when its first node is created.
func (p *Provider) Create(ctx context.Context, r providers.Resource) (providers.Object, error) {
	switch r.Kind {
	case providers.KindPool:
		t, err := p.createTemplate(ctx, poolName(r.Lineage, r.Pool), r.Pool)
		if err != nil {
			return providers.Object{}, err
		}
		return poolObject(t, r.Address, r.Lineage), nil
	case providers.KindNode:
		if r.Node == nil {
			return providers.Object{}, errors.New("create: no node spec")
		}
		if r.PoolSize > 1 {
			return p.createClusterNode(ctx, r)
		}
		return p.createPod(ctx, r)
	}
	return providers.Object{}, fmt.Errorf("create: unknown resource kind %q", r.Kind)
}

// Read implements providers.Provider.
func (p *Provider) Read(ctx context.Context, o providers.Object) (providers.Object, error) {
	switch o.Kind {
	case providers.KindPool:
		var t apiTemplate
		if err := p.api.rest(ctx, http.MethodGet, "/templates/"+url.PathEscape(o.ID), nil, &t); err != nil {
			return providers.Object{}, err
		}
		return poolObject(t, o.Address, o.Lineage), nil
	case providers.KindNode:
		var pod apiPod
		if err := p.api.rest(ctx, http.MethodGet, "/pods/"+url.PathEscape(o.ID), nil, &pod); err != nil {
			return providers.Object{}, err
		}
		return nodeObject(pod, o.Address, o.Lineage, o.Private["cluster"]), nil
	}
	return providers.Object{}, fmt.Errorf("read: unknown object kind %q", o.Kind)
}

// Update implements providers.Provider: nothing of a pod changes in
// place, but a pod that stopped is started again.
func (p *Provider) Update(ctx context.Context, o providers.Object, r providers.Resource) (providers.Object, error) {
	if o.Kind == providers.KindPool {
		return o, nil
	}
	var pod apiPod
	if err := p.api.rest(ctx, http.MethodGet, "/pods/"+url.PathEscape(o.ID), nil, &pod); err != nil {
		return providers.Object{}, err
	}
	if pod.DesiredStatus == "EXITED" {
		if err := p.api.rest(ctx, http.MethodPost, "/pods/"+url.PathEscape(o.ID)+"/start", nil, nil); err != nil {
			return providers.Object{}, fmt.Errorf("start pod %s: %w", o.ID, err)
		}
		return p.Read(ctx, o)
	}
	return nodeObject(pod, o.Address, o.Lineage, o.Private["cluster"]), nil
}

// Delete implements providers.Provider. A pod that is gone (404) is
// deleted; a pool's Instant Cluster, if it has one, is deleted with it.
func (p *Provider) Delete(ctx context.Context, o providers.Object) error {
	switch o.Kind {
	case providers.KindPool:
		cls, err := p.clusters(ctx)
		if err != nil {
			return err
		}
		name := o.Private["template"]
		if name == "" {
			name = poolName(o.Lineage, strings.TrimPrefix(o.Address, "pool."))
		}
		var errs []error
		for _, c := range cls {
			if c.Name == name {
				errs = append(errs, p.deleteCluster(ctx, c.ID))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		err = p.api.rest(ctx, http.MethodDelete, "/templates/"+url.PathEscape(o.ID), nil, nil)
		if errors.Is(err, providers.ErrNotFound) {
			return nil
		}
		return err
	case providers.KindNode:
		err := p.api.rest(ctx, http.MethodDelete, "/pods/"+url.PathEscape(o.ID), nil, nil)
		if errors.Is(err, providers.ErrNotFound) {
			return nil
		}
		return err
	}
	return fmt.Errorf("delete: unknown object kind %q", o.Kind)
}

// List implements providers.Provider with one GET /templates, one GET
// /pods and one GraphQL query of the account's clusters: what is named
// skyward-<lineage8>-...
func (p *Provider) List(ctx context.Context, lineage string) ([]providers.Object, error) {
	if lineage == "" {
		return nil, errors.New("list: no lineage given")
	}
	var tmpls []apiTemplate
	if err := p.api.rest(ctx, http.MethodGet, "/templates", nil, &tmpls); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	var pods []apiPod
	if err := p.api.rest(ctx, http.MethodGet, "/pods", nil, &pods); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	cls, err := p.clusters(ctx)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	prefix := namePrefix(lineage)
	var out []providers.Object
	for _, t := range tmpls {
		if pool, ok := strings.CutPrefix(t.Name, prefix); ok && pool != "" {
			out = append(out, poolObject(t, providers.PoolAddress(pool), lineage))
		}
	}
	byID := map[string]apiPod{}
	for _, pod := range pods {
		byID[pod.ID] = pod
	}
	seen := map[string]bool{}
	for _, c := range cls {
		pool, ok := strings.CutPrefix(c.Name, prefix)
		if !ok || pool == "" {
			continue
		}
		for _, cp := range c.Pods {
			pod, ok := byID[cp.ID]
			if !ok || cp.ClusterIdx == nil {
				continue // listed in the cluster, gone from the pods
			}
			if pod.ClusterIP == "" {
				pod.ClusterIP = cp.ClusterIP
			}
			seen[pod.ID] = true
			out = append(out, nodeObject(pod, providers.NodeAddress(pool, *cp.ClusterIdx), lineage, c.ID))
		}
	}
	for _, pod := range pods {
		if seen[pod.ID] {
			continue
		}
		if pool, index, ok := parsePodName(pod.Name, prefix); ok {
			out = append(out, nodeObject(pod, providers.NodeAddress(pool, index), lineage, ""))
		}
	}
	return out, nil
}
