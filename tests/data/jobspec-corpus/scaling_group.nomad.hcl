# A group's scaling block: the count's bounds and an autoscaler policy kept as written.
job "webapp" {
  group "frontend" {
    count = 3

    scaling {
      enabled = true
      min     = 2
      max     = 10

      policy {
        evaluation_interval = "10s"
        cooldown            = "1m"

        check "avg_sessions" {
          source = "prometheus"
          query  = "avg(sessions)"

          strategy "target-value" {
            target = 20
          }
        }
      }
    }

    task "web" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
    }
  }
}
