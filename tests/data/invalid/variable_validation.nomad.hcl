variable "replicas" {
  type    = number
  default = 12

  validation {
    condition     = var.replicas <= 10
    error_message = "replicas must be at most 10."
  }
}

job "example" {
  group "cache" {
    count = var.replicas

    task "redis" {
      driver = "docker"
    }
  }
}
