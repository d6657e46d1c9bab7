job "example" {
  group "cache" {
    cuont = 3

    task "redis" {
      driver = "docker"
    }
  }
}
