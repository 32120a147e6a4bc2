# A tour of the function library.

locals {
  n       = max(1, min(5, abs(-3)))
  csv     = csvdecode("a,b\n1,2\n3,4\n")
  decoded = jsondecode("{\"k\": [1, 2, 3]}")
  words   = split(" ", title(lower("HELLO BIG world")))
  joined  = join("-", reverse(sort(distinct(concat(["b", "a"], ["a", "c"])))))
  flat    = flatten([[1, 2], [3, [4]]])
  zipped  = zipmap(["x", "y"], [1, 2])
  chunks  = chunklist(range(6), 4)
  some    = coalesce("", "fallback")
  keys    = keys({ b = 1, a = 2 })
  product = setproduct(["a"], [1, 2])
  exists  = fileexists("greeting.txt")
  number  = tonumber("42") + parseint("ff", 16) + pow(2, 3) + ceil(1.2) + floor(1.8) + signum(-2)
  strings = [for s in ["  a ", "b\n"] : trimspace(chomp(s))]
  size    = length("héllo") + length([1, 2]) + length({ a = 1 })
  total   = sum([1, 2, 3])
  safe    = try(local.decoded.missing, "default")
  enc     = base64decode(base64encode("round trip"))
  fmtlist = formatlist("%s=%d", ["a", "b"], [1, 2])
  lookup  = lookup({ a = "x" }, "b", "none")
  sliced  = slice(["a", "b", "c"], 1, 3)
  element = element(["a", "b"], 3)
  indexed = index(["a", "b"], "b")
  regexes = regexall("[0-9]+", "a1b22c333")
  replace = replace("a.b.c", ".", "/")
  substr  = substr("skyward", 0, 3)
  trimmed = trimsuffix(trimprefix("xxhixx", "xx"), "xx")
  sets    = setunion(setintersection(["a", "b"], ["b"]), setsubtract(["c", "d"], ["d"]))
  rev     = strrev("abc")
  starts  = startswith("skyward", "sky") && endswith("skyward", "ward")
  values  = values({ a = 1, b = 2 })
  merged  = merge({ a = 1 }, { b = 2 })
  compact = compact(["a", "", "b"])
  has     = contains(["a"], "a")
  indent  = indent(2, "a\nb")
  md5     = md5("x")
  upper   = upper(format("%s-%d", "n", 1))
}

pool "fn" {
  nodes = local.n
}
