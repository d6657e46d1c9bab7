job "example" {
  group "cache" {
    task "redis" {
      driver = "docker"

      resources {
        cpu    = 500
        memory = 4
      }
    }
  }
}
