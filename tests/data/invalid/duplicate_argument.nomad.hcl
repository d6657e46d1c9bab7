job "example" {
  group "cache" {
    count = 1
    count = 2

    task "redis" {
      driver = "docker"
    }
  }
}
