# A task schedule (Nomad Enterprise): parsed, refused at registration.
job "office-hours" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
      schedule {
        cron {
          start    = "0 9 * * 1-5"
          end      = "0 17"
          timezone = "America/New_York"
        }
      }
    }
  }
}
