# A device request (GPUs): a count, a constraint and an affinity on the device's attributes.
job "train" {
  type = "batch"
  group "gpu" {
    task "trainer" {
      driver = "raw_exec"
      config {
        command = "/usr/local/bin/train"
      }

      resources {
        cpu    = 2000
        memory = 4096

        device "nvidia/gpu" {
          count = 2

          constraint {
            attribute = "${device.attr.memory}"
            operator  = ">="
            value     = "2 GiB"
          }

          affinity {
            attribute = "${device.attr.memory}"
            operator  = ">="
            value     = "4 GiB"
            weight    = 75
          }
        }
      }
    }
  }
}
