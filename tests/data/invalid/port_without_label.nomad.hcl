job "example" {
  group "cache" {
    network {
      port {
        to = 6379
      }
    }

    task "redis" {
      driver = "docker"
    }
  }
}
