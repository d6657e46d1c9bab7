job "example" {
  group "cache" {
    count {
      value = 3
    }

    task "redis" {
      driver = "docker"
    }
  }
}
