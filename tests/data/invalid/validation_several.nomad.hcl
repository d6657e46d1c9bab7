job "example" {
  type = "system"

  group "cache" {
    count = 3

    task "redis" {
      resources {
        memory = 128
      }
    }
  }
}
