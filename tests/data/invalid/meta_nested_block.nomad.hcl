job "example" {
  group "cache" {
    meta {
      owner = "team"

      labels {
        tier = "cache"
      }
    }

    task "redis" {
      driver = "docker"
    }
  }
}
