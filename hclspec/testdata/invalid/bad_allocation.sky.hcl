pool "dev" {
  allocation = "reserved" # ERROR: Invalid value for allocation
}
