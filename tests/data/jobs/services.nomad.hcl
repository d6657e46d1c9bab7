# Group and task services with checks of every kind; unnamed services and checks take
# Nomad's default names.
job "shop" {
  group "frontend" {
    network {
      port "http" {
        to = 8080
      }

      port "grpc" {}
    }

    service {
      name        = "shop-web"
      port        = "http"
      tags        = ["web", "urlprefix-/"]
      canary_tags = ["canary"]
      on_update   = "require_healthy"

      meta {
        version = "3"
      }

      check_restart {
        limit = 3
        grace = "90s"
      }

      check {
        type     = "http"
        path     = "/health"
        interval = "15s"
        timeout  = "3s"

        header {
          Authorization = ["Basic c2hvcDpzZWNyZXQ="]
          X-Probe       = ["nomad"]
        }
      }

      check {
        name     = "tcp alive"
        type     = "tcp"
        port     = "http"
        interval = "5s"

        check_restart {
          limit           = 1
          ignore_warnings = true
        }
      }
    }

    service {
      port     = "grpc"
      provider = "nomad"

      check {
        type    = "script"
        command = "/bin/grpc-health"
        args    = ["-addr", "localhost:${NOMAD_PORT_grpc}"]
        task    = "web"
      }
    }

    task "web" {
      driver = "docker"

      config {
        image = "example/shop:5.1"
        ports = ["http", "grpc"]
      }

      service {
        port         = "http"
        address_mode = "host"
        tags         = ["task"]
      }
    }
  }
}
