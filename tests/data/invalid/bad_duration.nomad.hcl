job "example" {
  group "cache" {
    restart {
      attempts = 2
      interval = "30 minutes"
    }

    task "redis" {
      driver = "docker"
    }
  }
}
