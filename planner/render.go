package planner

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// Colors used by Render; the zero value prints no escapes.
type Colors struct {
	Create, Update, Delete, Bold, Reset string
}

// ANSIColors are the terminal colours Terraform uses.
var ANSIColors = Colors{Create: "\x1b[32m", Update: "\x1b[33m", Delete: "\x1b[31m", Bold: "\x1b[1m", Reset: "\x1b[0m"}

// knownAfterApply are shown as "(known after apply)" on resources being
// created.
var knownAfterApply = map[string][]string{
	"pool": {"id"},
	"node": {"id", "private_ip", "ssh_port"},
}

// Render writes the human plan: the legend, each change with its attribute
// diff, and the summary line.
func (p *Plan) Render(w io.Writer, col Colors) {
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "%sWarning:%s %s\n\n", col.Bold, col.Reset, warn)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
	if len(p.Notes) > 0 {
		fmt.Fprintln(w)
	}
	if !p.HasChanges() {
		fmt.Fprintf(w, "%s%s%s\n", col.Bold, p.Summary(), col.Reset)
		return
	}
	used := map[Action]bool{}
	for _, c := range p.Changes {
		used[c.Action] = true
	}
	fmt.Fprintln(w, "Skyward used the selected providers to generate the following execution plan.")
	fmt.Fprintln(w, "Resource actions are indicated with the following symbols:")
	for _, a := range []Action{Create, Update, DeleteThenCreate, Delete} {
		if used[a] {
			fmt.Fprintf(w, "%s%3s%s %s\n", colorOf(a, col), a.Symbol(), col.Reset, legend[a])
		}
	}
	fmt.Fprintf(w, "\nSkyward will perform the following actions:\n")
	for _, c := range p.Changes {
		if c.Action == NoOp {
			continue
		}
		fmt.Fprintln(w)
		c.render(w, col)
	}
	fmt.Fprintf(w, "\n%s%s%s\n", col.Bold, p.Summary(), col.Reset)
}

var legend = map[Action]string{
	Create:           "create",
	Update:           "update in-place",
	DeleteThenCreate: "destroy and then create replacement",
	Delete:           "destroy",
}

func colorOf(a Action, col Colors) string {
	switch a {
	case Create:
		return col.Create
	case Update:
		return col.Update
	case Delete:
		return col.Delete
	case DeleteThenCreate:
		return col.Update
	}
	return ""
}

// headline is Terraform's comment above a resource.
func (c *Change) headline() string {
	if c.Reason != "" && c.Action != Delete {
		return fmt.Sprintf("# %s %s", c.Address, c.Reason)
	}
	switch c.Action {
	case Create:
		return "# " + c.Address + " will be created"
	case Update:
		return "# " + c.Address + " will be updated in-place"
	case DeleteThenCreate:
		return "# " + c.Address + " must be replaced"
	case Delete:
		s := "# " + c.Address + " will be destroyed"
		if c.Reason != "" {
			s += "\n  # (because " + c.Address + " " + c.Reason + ")"
		}
		return s
	}
	return ""
}

func (c *Change) render(w io.Writer, col Colors) {
	fmt.Fprintf(w, "  %s%s%s\n", col.Bold, c.headline(), col.Reset)
	name := c.Pool
	if c.Index != nil {
		name = fmt.Sprintf("%s/%d", c.Pool, *c.Index)
	}
	fmt.Fprintf(w, "%s%3s%s %s %q {\n", colorOf(c.Action, col), c.Action.Symbol(), col.Reset, c.Type, name)

	type line struct{ sym, key, val, note string }
	var lines []line
	unchanged := 0
	switch c.Action {
	case Create:
		after := MaskAttributes(c.After, c.Sensitive)
		keys := sortedKeys(c.After)
		for _, k := range keys {
			if (isZero(c.After[k]) && k != "index") || k == "pool" {
				continue
			}
			lines = append(lines, line{"+", k, formatValue(after[k]), ""})
		}
		for _, k := range knownAfterApply[c.Type] {
			lines = append(lines, line{"+", k, "(known after apply)", ""})
		}
	case Delete:
		before := MaskAttributes(c.Before, c.BeforeSensitive)
		keys := sortedKeys(c.Before)
		for _, k := range keys {
			if isZero(c.Before[k]) || k == "host_key" || k == "provider_config" {
				continue
			}
			lines = append(lines, line{"-", k, formatValue(before[k]) + " -> null", ""})
		}
		if c.PriorID != "" {
			lines = append(lines, line{"-", "id", fmt.Sprintf("%q -> null", c.PriorID), ""})
		}
	default:
		before := MaskAttributes(c.Before, c.BeforeSensitive)
		after := MaskAttributes(c.After, c.Sensitive)
		for _, k := range sortedKeys(c.After) {
			if identityAttrs[k] && k != "image" {
				continue
			}
			if reflect.DeepEqual(c.Before[k], c.After[k]) {
				unchanged++
				continue
			}
			b, a := formatValue(before[k]), formatValue(after[k])
			note := ""
			if slices.Contains(c.ReplacePaths, k) {
				note = " # forces replacement"
			}
			if a == b {
				// Only a masked part differs: say that it does, not what.
				note += " # (a sensitive value changed)"
			}
			lines = append(lines, line{"~", k, b + " -> " + a, note})
		}
		if c.PriorID != "" {
			if c.Action == DeleteThenCreate {
				lines = append(lines, line{"~", "id", fmt.Sprintf("%q -> (known after apply)", c.PriorID), ""})
			} else {
				lines = append(lines, line{" ", "id", fmt.Sprintf("%q", c.PriorID), ""})
			}
		}
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].key < lines[j].key })
	width := 0
	for _, l := range lines {
		width = max(width, len(l.key))
	}
	for _, l := range lines {
		sc := ""
		switch l.sym {
		case "+":
			sc = col.Create
		case "~":
			sc = col.Update
		case "-":
			sc = col.Delete
		}
		fmt.Fprintf(w, "      %s%s%s %-*s = %s%s\n", sc, l.sym, col.Reset, width, l.key, l.val, l.note)
	}
	if unchanged > 0 {
		fmt.Fprintf(w, "        # (%d unchanged attributes hidden)\n", unchanged)
	}
	fmt.Fprintln(w, "    }")
}

func isZero(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case float64:
		return v == 0
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// formatValue renders an attribute value in HCL-like syntax on one line.
func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case MaskedValue:
		return SensitiveText
	case string:
		return fmt.Sprintf("%q", v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = formatValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		if len(v) == 0 {
			return "{}"
		}
		var parts []string
		for _, k := range sortedKeys(v) {
			parts = append(parts, fmt.Sprintf("%s = %s", k, formatValue(v[k])))
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}
