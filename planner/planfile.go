package planner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/skyward-sh/skyward/state"
)

// planFileFormat marks a skyward plan file. Version 2 added the checksum.
const (
	planFileFormat  = "skyward-plan"
	planFileVersion = 2
)

// ErrStalePlan is returned by CheckFresh when the state has moved on since
// the plan was made.
var ErrStalePlan = errors.New("Saved plan is stale")

type planFile struct {
	Format  string `json:"format"`
	Version int    `json:"format_version"`
	Dir     string `json:"dir"`
	// Checksum is "sha256:" and the hex SHA-256 of Plan in canonical JSON
	// (see planChecksum).
	Checksum string          `json:"checksum"`
	Plan     json.RawMessage `json:"plan"`
}

// WritePlanFile saves p to path (mode 0600: it may hold provider secrets).
func WritePlanFile(path, dir string, p *Plan) error {
	b, err := encodePlanFile(dir, p)
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

// encodePlanFile returns the bytes of p's plan file.
func encodePlanFile(dir string, p *Plan) ([]byte, error) {
	plan, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return wrapPlan(dir, plan)
}

// wrapPlan puts a plan's JSON in a plan file, with its checksum.
func wrapPlan(dir string, plan []byte) ([]byte, error) {
	sum, err := planChecksum(plan)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(planFile{Format: planFileFormat, Version: planFileVersion, Dir: dir,
		Checksum: sum, Plan: plan}, "", "  ")
}

// planChecksum hashes the plan's JSON in a canonical form (object keys
// sorted, no spaces, numbers as written), so that the sum does not depend
// on how the file is indented or its keys ordered, only on what it says.
func planChecksum(plan []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(plan))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	canonical, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canonical)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// ReadPlanFile loads a plan saved by WritePlanFile. It refuses a file whose
// checksum does not match (edited by hand, or damaged) and one whose plan
// is not one that Build could have made (DecodePlan).
func ReadPlanFile(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plan file: %w", err)
	}
	p, err := DecodePlanFile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// DecodePlanFile decodes and checks the bytes of a plan file.
func DecodePlanFile(b []byte) (*Plan, error) {
	var pf planFile
	if err := json.Unmarshal(b, &pf); err != nil || pf.Format != planFileFormat {
		return nil, errors.New("not a skyward plan file")
	}
	switch {
	case pf.Version > planFileVersion:
		return nil, fmt.Errorf("written by a newer skyward (plan format %d); upgrade skyward", pf.Version)
	case pf.Version < planFileVersion:
		return nil, fmt.Errorf("written by an older skyward (plan format %d); run plan again", pf.Version)
	case len(pf.Plan) == 0 || string(pf.Plan) == "null":
		return nil, errors.New("holds no plan")
	}
	sum, err := planChecksum(pf.Plan)
	if err != nil {
		return nil, fmt.Errorf("invalid plan: %w", err)
	}
	if pf.Checksum != sum {
		return nil, errors.New("the plan's checksum does not match: the file was changed after plan wrote it; run plan again")
	}
	dec := json.NewDecoder(bytes.NewReader(pf.Plan))
	dec.DisallowUnknownFields()
	var p Plan
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("invalid plan: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("invalid plan: %w", err)
	}
	if p.Prior == nil {
		p.Prior = state.New(p.Lineage)
	}
	return &p, nil
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
