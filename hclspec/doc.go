// Package hclspec owns skyward's configuration language: it finds and parses
// the *.sky.hcl files of a directory, decodes every block (variable, locals,
// output, provider, image, pool, task), resolves input variables from -var,
// -var-file, SKYWARD_VAR_<name> and defaults, evaluates expressions with the
// function library, type-checks every argument, and reports every problem at
// once as hcl.Diagnostics with the tightest source range. It also renders
// diagnostics (text and Terraform's validate -json shape) and formats files
// canonically (skyward fmt).
//
// The result of Load is a read-only *Config that the planner and the CLI
// consume.
//
// What this package must not do: call providers (a provider's arguments are
// checked against the hcldec schema the caller passes in
// LoadOptions.ProviderSchemas), read or write state, start processes or open
// network connections, or import any other skyward package. Everything it
// knows about applied infrastructure arrives as plain cty values in
// LoadOptions.PoolValues.
package hclspec
