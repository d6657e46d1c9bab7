# Resources: MHz of CPU or dedicated cores, memory with an oversubscription ceiling.
job "compute" {
  group "compute" {
    task "crunch" {
      driver = "raw_exec"

      config {
        command = "/opt/crunch"
      }

      resources {
        cores      = 2
        memory     = 4096
        memory_max = 8192
      }
    }

    task "light" {
      driver = "raw_exec"

      config {
        command = "/opt/light"
      }

      resources {
        cpu = 250
      }
    }
  }
}
