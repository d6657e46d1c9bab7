# A system job runs one allocation on every feasible node and is never rescheduled.
job "node-exporter" {
  type     = "system"
  priority = 70

  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }

  group "exporter" {
    network {
      port "metrics" {
        static = 9100
      }
    }

    task "exporter" {
      driver = "docker"

      config {
        image        = "prom/node-exporter:v1.8.1"
        network_mode = "host"
        args         = ["--web.listen-address=:${NOMAD_PORT_metrics}"]
      }

      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
