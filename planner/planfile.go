package planner

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/skyward-sh/skyward/state"
)

// planFileFormat marks a skyward plan file.
const (
	planFileFormat  = "skyward-plan"
	planFileVersion = 1
)

// ErrStalePlan is returned by CheckFresh when the state has moved on since
// the plan was made.
var ErrStalePlan = errors.New("Saved plan is stale")

type planFile struct {
	Format  string `json:"format"`
	Version int    `json:"format_version"`
	Dir     string `json:"dir"`
	Plan    *Plan  `json:"plan"`
}

// WritePlanFile saves p to path (mode 0600: it may hold provider secrets).
func WritePlanFile(path, dir string, p *Plan) error {
	b, err := json.MarshalIndent(planFile{Format: planFileFormat, Version: planFileVersion, Dir: dir, Plan: p}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".plan-*")
	if err != nil {
		return fmt.Errorf("write plan file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write plan file: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ReadPlanFile loads a plan saved by WritePlanFile.
func ReadPlanFile(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plan file: %w", err)
	}
	var pf planFile
	if err := json.Unmarshal(b, &pf); err != nil || pf.Format != planFileFormat {
		return nil, fmt.Errorf("%s is not a skyward plan file", path)
	}
	if pf.Version > planFileVersion {
		return nil, fmt.Errorf("%s was written by a newer skyward (plan format %d); upgrade skyward", path, pf.Version)
	}
	if pf.Plan == nil {
		return nil, fmt.Errorf("%s holds no plan", path)
	}
	if pf.Plan.Prior == nil {
		pf.Plan.Prior = state.New(pf.Plan.Lineage)
	}
	return pf.Plan, nil
}

// CheckFresh returns an error wrapping ErrStalePlan unless cur is the
// state the plan was made from (same lineage and serial).
func (p *Plan) CheckFresh(cur *state.State) error {
	var lineage string
	var serial uint64
	if cur != nil {
		lineage, serial = cur.Lineage, cur.Serial
	}
	if lineage != p.Lineage || serial != p.Serial {
		return fmt.Errorf("%w: the state has changed since the plan was made (plan: lineage %s serial %d; state: lineage %s serial %d). Run plan again.",
			ErrStalePlan, p.Lineage, p.Serial, lineage, serial)
	}
	return nil
}
