# A web server on caravan's offline test image (scripts/test-image.sh builds it from busybox-static),
# so it runs on any node with a Docker daemon, registry or not. The scheduler picks the host port of
# "http"; the container listens on 8080.
job "web" {
  type = "service"

  group "web" {
    count = 1

    network {
      port "http" {
        to = 8080
      }
    }

    restart {
      attempts = 2
      interval = "5m"
      delay    = "1s"
      mode     = "fail"
    }

    task "httpd" {
      driver = "docker"

      config {
        image = "caravan-test/busybox:latest"
        args  = ["httpd", "-f", "-p", "8080", "-h", "/www"]
        ports = ["http"]
        labels {
          app = "web"
        }
      }

      resources {
        cpu    = 100
        memory = 32
      }
    }
  }
}
