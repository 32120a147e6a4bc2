package planner

// Action is what a plan does to one resource. The values are Terraform's
// typed runes.
type Action rune

const (
	// NoOp leaves the resource as it is.
	NoOp Action = 0
	// Create makes a new resource.
	Create Action = '+'
	// Update changes the resource in place.
	Update Action = '~'
	// DeleteThenCreate replaces the resource: the old one is removed first.
	DeleteThenCreate Action = '∓'
	// Delete removes the resource.
	Delete Action = '-'
)

// IsReplace reports whether the action replaces the resource.
func (a Action) IsReplace() bool { return a == DeleteThenCreate }

// Symbol is the marker printed before a resource in a human plan.
func (a Action) Symbol() string {
	switch a {
	case Create:
		return "+"
	case Update:
		return "~"
	case DeleteThenCreate:
		return "-/+"
	case Delete:
		return "-"
	}
	return " "
}

// Actions is the action list of Terraform's JSON plan representation.
func (a Action) Actions() []string {
	switch a {
	case Create:
		return []string{"create"}
	case Update:
		return []string{"update"}
	case DeleteThenCreate:
		return []string{"delete", "create"}
	case Delete:
		return []string{"delete"}
	}
	return []string{"no-op"}
}

// UIAction is the action name of Terraform's machine-readable UI
// (`planned_change` and `apply_start` messages).
func (a Action) UIAction() string {
	switch a {
	case Create:
		return "create"
	case Update:
		return "update"
	case DeleteThenCreate:
		return "replace"
	case Delete:
		return "delete"
	}
	return "noop"
}

// String is the action name ("create", "update", "replace", "delete").
func (a Action) String() string { return a.UIAction() }
