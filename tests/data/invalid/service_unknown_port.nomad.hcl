job "example" {
  group "cache" {
    network {
      port "db" {
        to = 6379
      }
    }

    service {
      name = "redis"
      port = "dbb"

      check {
        type     = "http"
        interval = "10s"
      }
    }

    task "redis" {
      driver = "docker"
    }
  }
}
