image "py" {
  includes = ["./include_same_name.sky.hcl", "../invalid/include_same_name.sky.hcl"] # ERROR: Duplicate include name
  pip = [
    "./include_missing.sky.hcl",
    "../invalid/include_missing.sky.hcl", # ERROR: Duplicate pip name
  ]
}
