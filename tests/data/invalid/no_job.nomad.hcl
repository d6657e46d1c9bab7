variable "image" {
  default = "redis:7"
}
