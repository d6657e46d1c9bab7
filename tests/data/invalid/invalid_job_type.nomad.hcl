job "example" {
  type = "daemon"

  group "cache" {
    task "redis" {
      driver = "docker"
    }
  }
}
