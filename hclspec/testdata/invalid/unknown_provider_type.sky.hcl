provider "gcp" { # ERROR: Unknown provider type
  project = "x"
}
