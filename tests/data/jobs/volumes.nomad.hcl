# A host volume requested by the group and mounted into a task.
job "grafana" {
  group "grafana" {
    volume "data" {
      type      = "host"
      source    = "grafana-data"
      read_only = false
    }

    volume "dashboards" {
      source    = "dashboards"
      read_only = true
    }

    task "grafana" {
      driver = "docker"

      config {
        image = "grafana/grafana:11.1.0"
      }

      volume_mount {
        volume      = "data"
        destination = "/var/lib/grafana"
      }

      volume_mount {
        volume      = "dashboards"
        destination = "/etc/dashboards"
        read_only   = true
      }
    }
  }
}
