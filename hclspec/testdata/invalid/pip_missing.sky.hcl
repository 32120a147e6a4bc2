image "py" {
  pip = [
    "requests",
    "./dist/mypkg-1.0-py3-none-any.whl", # ERROR: Pip path not found
    "../nowhere", # ERROR: Pip path not found
  ]
}
