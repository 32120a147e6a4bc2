image "py" {}
image "py" {} # ERROR: Duplicate image block
