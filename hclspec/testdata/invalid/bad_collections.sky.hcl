pool "even" {
  nodes       = 4
  collections = { replicas = 2 } # ERROR: Invalid value for collections
}

pool "small" {
  nodes       = 2
  collections = { replicas = 3 } # ERROR: Invalid value for collections
}

pool "typo" {
  nodes       = 3
  collections = { replica = 3 } # ERROR: Invalid value for collections
}

pool "shape" {
  collections = 3 # ERROR: Invalid value for collections
}
