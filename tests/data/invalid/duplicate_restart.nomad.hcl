job "example" {
  group "cache" {
    restart {
      attempts = 2
    }

    restart {
      attempts = 3
    }

    task "redis" {
      driver = "docker"
    }
  }
}
