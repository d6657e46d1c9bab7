variable "image" {
  default = "redis:7"
}

job "example" {
  group "cache" {
    task "redis" {
      driver = "docker"

      config {
        image = "${var.imag}"
      }
    }
  }
}
