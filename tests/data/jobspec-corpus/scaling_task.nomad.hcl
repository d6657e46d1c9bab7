# Task-level scaling "cpu" and scaling "mem" (vertical policies for the autoscaler).
job "vertical" {
  group "app" {
    task "worker" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }

      resources {
        cpu    = 500
        memory = 256
      }

      scaling "cpu" {
        enabled = true
        min     = 100
        max     = 1000
        policy {
          cooldown            = "5m"
          evaluation_interval = "1m"
        }
      }

      scaling "mem" {
        min = 64
        max = 512
      }
    }
  }
}
