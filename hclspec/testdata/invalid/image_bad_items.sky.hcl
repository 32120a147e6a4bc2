image "py" {
  apt = [
    "jq",
    "-oAPT::Get::Foo=1", # ERROR: Invalid apt package
    "",                  # ERROR: Invalid apt package
  ]
  pip = ["--index-url=http://evil"] # ERROR: Invalid pip package
  env = {
    GOOD  = "1"
    "F=G" = "x" # ERROR: Invalid environment variable name
    ""    = "y" # ERROR: Invalid environment variable name
  }
}
