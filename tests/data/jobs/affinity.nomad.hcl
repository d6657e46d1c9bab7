# Affinities: soft preferences with weights (50 when not given).
job "affine" {
  affinity {
    attribute = "${node.datacenter}"
    value     = "us-west1"
    weight    = 100
  }

  group "cache" {
    affinity {
      attribute = "${meta.rack}"
      value     = "r1"
    }

    task "redis" {
      driver = "docker"

      affinity {
        attribute = "${attr.cpu.numcores}"
        operator  = ">="
        value     = "8"
        weight    = -50
      }

      affinity {
        attribute        = "${meta.tags}"
        set_contains_any = "fast,ssd"
        weight           = 25
      }

      config {
        image = "redis:7"
      }
    }
  }
}
