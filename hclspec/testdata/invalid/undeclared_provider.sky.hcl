pool "dev" {
  provider = aws # ERROR: Reference to undeclared provider
}
