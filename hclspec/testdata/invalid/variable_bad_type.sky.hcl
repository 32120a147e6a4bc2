variable "nodes" {
  type = integer # ERROR: Invalid type specification
}
