job "example" {
  group "cache" {
    restart {
      mode = "retry"
    }

    task "redis" {
      driver = "docker"
    }
  }
}
