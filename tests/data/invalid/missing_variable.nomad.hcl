variable "image" {
  type = string
}

job "example" {
  group "cache" {
    task "redis" {
      driver = "docker"

      config {
        image = var.image
      }
    }
  }
}
