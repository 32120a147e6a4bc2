image "py" {
  excludes = [
    "ok/**",
    "[", # ERROR: Invalid exclude pattern
    "",  # ERROR: Invalid exclude pattern
  ]
}
