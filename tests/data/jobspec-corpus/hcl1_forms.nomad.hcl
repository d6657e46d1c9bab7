# Nomad's older forms still found in job files: a network inside resources with its ports, a
# reserved_ports block, meta as a block.
job "legacy" {
  meta {
    owner = "ops"
  }

  group "g" {
    task "web" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
      resources {
        cpu    = 100
        memory = 64
        network {
          mbits = 10
          port "http" {}
          reserved_ports "admin" {
            static = 9999
          }
        }
      }
    }
  }
}
