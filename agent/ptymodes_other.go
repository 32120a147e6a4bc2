//go:build !linux

package agent

import "os"

// applyModes is a no-op where termios ioctls differ; nodes run Linux.
func applyModes(*os.File, string) error { return nil }
