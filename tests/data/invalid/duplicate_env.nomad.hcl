job "example" {
  group "cache" {
    task "redis" {
      driver = "docker"

      env {
        A = "1"
      }

      env {
        B = "2"
      }
    }
  }
}
