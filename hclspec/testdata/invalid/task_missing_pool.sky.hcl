task "hello" { # ERROR: Missing required argument
  run = "echo hi"
}
