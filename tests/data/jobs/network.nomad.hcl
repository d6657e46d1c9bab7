# Bridge networking with static and dynamic ports, mapped and on named host networks.
job "gateway" {
  group "gateway" {
    network {
      mode     = "bridge"
      hostname = "gateway"

      port "http" {
        static = 8080
        to     = 80
      }

      port "admin" {
        to           = 9000
        host_network = "private"
      }

      port "metrics" {}
    }

    service {
      name = "gateway"
      port = "http"
    }

    task "envoy" {
      driver = "docker"

      config {
        image = "envoyproxy/envoy:v1.31.0"
        ports = ["http", "admin", "metrics"]
      }
    }
  }
}
