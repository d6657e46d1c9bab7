job "example" {
  constraint {
    attribute = attr.kernel.name
    value     = "linux"
  }

  group "cache" {
    task "redis" {
      driver = "docker"
    }
  }
}
