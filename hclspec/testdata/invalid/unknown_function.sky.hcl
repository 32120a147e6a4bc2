locals {
  x = frobnicate(1) # ERROR: Call to unknown function
}
