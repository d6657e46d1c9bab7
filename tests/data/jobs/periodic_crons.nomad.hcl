# Several cron expressions, and a periodic block switched off.
job "reports" {
  type = "sysbatch"

  periodic {
    crons   = ["0 9 * * 1-5", "0 12 * * 6"]
    enabled = false
  }

  group "reports" {
    task "send" {
      driver = "raw_exec"

      config {
        command = "/usr/local/bin/send-reports"
      }
    }
  }
}
