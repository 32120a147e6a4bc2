pool "1dev" {} # ERROR: Invalid pool name
