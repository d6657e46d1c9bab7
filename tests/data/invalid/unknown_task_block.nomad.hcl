job "example" {
  group "cache" {
    task "redis" {
      driver = "docker"

      resourcez {
        cpu = 500
      }
    }
  }
}
