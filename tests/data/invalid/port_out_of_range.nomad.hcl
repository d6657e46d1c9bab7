job "example" {
  group "cache" {
    network {
      port "db" {
        static = 70000
      }
    }

    task "redis" {
      driver = "docker"
    }
  }
}
