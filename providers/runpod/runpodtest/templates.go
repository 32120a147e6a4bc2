package runpodtest

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// Template is a pod template as REST v1 returns it (the Template schema
// of the OpenAPI document): a named, reusable set of pod settings.
type Template struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	ImageName         string            `json:"imageName"`
	Ports             []string          `json:"ports"`
	Env               map[string]string `json:"env"`
	ContainerDiskInGb int               `json:"containerDiskInGb"`
	IsServerless      bool              `json:"isServerless"`
	Readme            string            `json:"readme,omitempty"`
}

// Templates returns the account's templates, sorted by name.
func (s *Server) Templates() []Template {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Template, 0, len(s.templates))
	for _, t := range s.templates {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// templatesREST serves /v1/templates and /v1/templates/{id}: POST, GET
// and DELETE. Template names are unique in an account, as on RunPod.
func (s *Server) templatesREST(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/v1/templates"), "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case id == "" && r.Method == http.MethodGet:
		out := make([]Template, 0, len(s.templates))
		for _, t := range s.templates {
			out = append(out, *t)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		writeJSON(w, http.StatusOK, out)
	case id == "" && r.Method == http.MethodPost:
		var t Template
		if err := json.NewDecoder(r.Body).Decode(&t); err != nil || t.Name == "" || t.ImageName == "" {
			writeJSON(w, http.StatusBadRequest, restError{Error: "create template: name and imageName are required", Status: 400})
			return
		}
		for _, o := range s.templates {
			if o.Name == t.Name {
				writeJSON(w, http.StatusBadRequest, restError{Error: "create template: Template name must be unique", Status: 400})
				return
			}
		}
		t.ID = randomID(7)
		t.Ports = slices.Clone(t.Ports)
		s.templates[t.ID] = &t
		writeJSON(w, http.StatusOK, t)
	case id != "" && r.Method == http.MethodGet:
		t, ok := s.templates[id]
		if !ok {
			writeJSON(w, http.StatusNotFound, restError{Error: "template not found", Status: 404})
			return
		}
		writeJSON(w, http.StatusOK, t)
	case id != "" && r.Method == http.MethodDelete:
		if _, ok := s.templates[id]; !ok {
			writeJSON(w, http.StatusNotFound, restError{Error: "template not found", Status: 404})
			return
		}
		for _, p := range s.pods {
			if p.template == id {
				writeJSON(w, http.StatusBadRequest, restError{Error: "delete template: the template is in use by a pod", Status: 400})
				return
			}
		}
		delete(s.templates, id)
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusMethodNotAllowed, restError{Error: "method not allowed", Status: 405})
	}
}
