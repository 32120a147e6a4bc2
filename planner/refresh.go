package planner

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"

	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/state"
)

// Refresh reads every object of the state's lineage from the providers, one
// List call per provider, and returns a copy of st brought up to date:
// resources whose object is gone are dropped, provider facts are updated,
// stopped nodes are marked (attribute "running" = false), and objects of the
// lineage the state lacks are added with status "creating" so that the plan
// replaces them (when their address is still configured) or destroys them.
// provs maps provider addresses to providers; st is not modified.
func Refresh(ctx context.Context, st *state.State, provs map[string]providers.Provider) (*state.State, []string, error) {
	out := st.DeepCopy()
	if st.Lineage == "" {
		return out, nil, nil
	}
	type listed struct {
		obj  providers.Object
		prov string
	}
	var (
		mu      sync.Mutex
		objs    = map[string]listed{}
		errs    []error
		wg      sync.WaitGroup
		addrs   = sortedKeys(provs)
		visited = map[providers.Provider]bool{}
	)
	for _, addr := range addrs {
		p := provs[addr]
		if visited[p] {
			continue
		}
		visited[p] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			list, err := p.List(ctx, st.Lineage)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("refresh: provider %s: %w", addr, err))
				return
			}
			for _, o := range list {
				if _, seen := objs[o.ID]; !seen {
					objs[o.ID] = listed{o, addr}
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}

	var notes []string
	matched := map[string]bool{}
	for _, r := range st.Resources {
		if _, ok := provs[r.Provider]; !ok {
			// Its provider could not be built; keep the resource as it is.
			continue
		}
		l, ok := objs[r.ID]
		if !ok {
			out.Remove(r.Address)
			notes = append(notes, fmt.Sprintf("%s (id %s) no longer exists on the provider.", r.Address, shortID(r.ID)))
			continue
		}
		matched[r.ID] = true
		nr := out.Get(r.Address)
		mergeFacts(nr, l.obj)
	}
	ids := sortedKeys(objs)
	sort.SliceStable(ids, func(i, j int) bool { return objs[ids[i]].obj.Address < objs[ids[j]].obj.Address })
	for _, id := range ids {
		if matched[id] {
			continue
		}
		l := objs[id]
		o := l.obj
		pool, idx, err := ParseAddress(o.Address)
		if err != nil || o.Address == "" {
			notes = append(notes, fmt.Sprintf("Object %s carries lineage %s but no valid address label; remove it by hand.", o.ID, st.Lineage))
			continue
		}
		if existing := out.Get(o.Address); existing != nil {
			// A second object for an address the state already has: record
			// it under a distinct address so that the plan destroys it.
			o.Address = fmt.Sprintf("%s#%s", o.Address, shortID(o.ID))
		}
		r := &state.Resource{
			Address:    o.Address,
			Type:       string(o.Kind),
			Pool:       pool,
			Provider:   l.prov,
			ID:         o.ID,
			Attributes: map[string]any{},
			Status:     state.StatusCreating,
		}
		if idx >= 0 {
			r.Index = &idx
		}
		mergeFacts(r, o)
		out.Set(r)
		notes = append(notes, fmt.Sprintf("%s (id %s) exists on the provider but was missing from the state; it was adopted.", o.Address, shortID(o.ID)))
	}
	return out, notes, nil
}

// mergeFacts copies the provider's facts about o into r's attributes.
func mergeFacts(r *state.Resource, o providers.Object) {
	if r.Attributes == nil {
		r.Attributes = map[string]any{}
	}
	for k, v := range Facts(o) {
		if v != "" {
			r.Attributes[k] = v
		}
	}
	if o.Kind == providers.KindNode {
		if o.Running {
			delete(r.Attributes, "running")
		} else {
			r.Attributes["running"] = false
		}
	}
}

// Facts are the state attributes that record a provider's facts about an
// object: its private facts as they are, and for nodes private_ip,
// public_ip, ssh_host, ssh_port and ssh_user ("" when not known), and
// ssh_proxy_command when the node is reached through one. The
// pinned host key is the controller's, not a fact: it is never refreshed.
func Facts(o providers.Object) map[string]string {
	out := make(map[string]string, len(o.Private)+5)
	for k, v := range o.Private {
		out[k] = v
	}
	if o.Kind != providers.KindNode {
		return out
	}
	out["private_ip"] = o.PrivateIP
	out["public_ip"] = o.PublicIP
	out["ssh_host"] = o.SSH.Host
	out["ssh_user"] = o.SSH.User
	out["ssh_port"] = ""
	if o.SSH.Port != 0 {
		out["ssh_port"] = strconv.Itoa(o.SSH.Port)
	}
	if o.SSH.ProxyCommand != "" {
		out["ssh_proxy_command"] = o.SSH.ProxyCommand
	}
	return out
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
