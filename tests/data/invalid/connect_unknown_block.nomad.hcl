job "x" {
  group "g" {
    service {
      name = "api"
      connect {
        sidecar_service {
          proxy {
            upstream {
              destination_name = "db"
            }
          }
        }
      }
    }
    task "t" {
      driver = "raw_exec"
    }
  }
}
