job "example" {
  group {
    task "redis" {
      driver = "docker"
    }
  }
}
