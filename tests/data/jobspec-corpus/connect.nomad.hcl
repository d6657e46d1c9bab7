# Consul service mesh: a sidecar with an upstream and a customised sidecar task. Parsed, refused
# at registration naming the block.
job "countdash" {
  group "dashboard" {
    network {
      mode = "bridge"
      port "http" {
        static = 9002
        to     = 9002
      }
    }

    service {
      name = "count-dashboard"
      port = "9002"

      connect {
        sidecar_service {
          tags = ["mesh"]
          proxy {
            upstreams {
              destination_name = "count-api"
              local_bind_port  = 8080
              mesh_gateway {
                mode = "local"
              }
            }
            expose {
              path {
                path            = "/health"
                protocol        = "http"
                local_path_port = 9002
                listener_port   = "http"
              }
            }
            config {
              protocol = "http"
            }
          }
        }

        sidecar_task {
          resources {
            cpu    = 50
            memory = 64
          }
          shutdown_delay = "5s"
          identity {
            name = "consul_default"
            aud  = ["consul.io"]
            ttl  = "1h"
          }
        }
      }
    }

    task "dashboard" {
      driver = "docker"
      env {
        COUNTING_SERVICE_URL = "http://${NOMAD_UPSTREAM_ADDR_count_api}"
      }
      config {
        image = "hashicorpdev/counter-dashboard:v3"
      }
    }
  }
}
