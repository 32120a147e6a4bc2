locals {
  x = file("nope.txt") # ERROR: Invalid function argument
}
