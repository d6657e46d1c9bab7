# Spreads balance allocations across the values of a node attribute.
job "spread" {
  datacenters = ["us-east1", "us-west1"]

  spread {
    attribute = "${node.datacenter}"
    weight    = 100

    target "us-east1" {
      percent = 60
    }

    target "us-west1" {
      percent = 40
    }
  }

  group "web" {
    count = 10

    spread {
      attribute = "${meta.rack}"
    }

    task "web" {
      driver = "docker"

      config {
        image = "nginx:1.27"
      }
    }
  }
}
