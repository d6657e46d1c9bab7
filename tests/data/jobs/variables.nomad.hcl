# HCL2 variables: typed, with defaults, used bare and in interpolations.
variable "datacenters" {
  description = "Where the job may run."
  type        = list(string)
  default     = ["dc1", "dc2"]
}

variable "image_tag" {
  type    = string
  default = "7.2"
}

variable "replicas" {
  type    = number
  default = 3

  validation {
    condition     = var.replicas > 0 && var.replicas <= 10
    error_message = "replicas must be between 1 and 10."
  }
}

variable "labels" {
  type = map(string)
  default = {
    team = "cache"
  }
}

variables {
  memory = 512
}

job "vars" {
  datacenters = var.datacenters

  group "cache" {
    count = var.replicas

    task "redis" {
      driver = "docker"

      config {
        image  = "redis:${var.image_tag}"
        labels = var.labels
      }

      resources {
        memory = var.memory
      }

      meta {
        replicas = "${var.replicas} of ${var.image_tag}"
      }
    }
  }
}
