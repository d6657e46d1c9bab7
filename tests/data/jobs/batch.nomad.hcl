# A batch job: a restart block without attempts takes the batch default (3).
job "report" {
  type        = "batch"
  datacenters = ["dc1"]

  group "report" {
    restart {
      delay = "30s"
      mode  = "delay"
    }

    task "generate" {
      driver = "raw_exec"

      config {
        command = "/usr/local/bin/report"
        args    = ["--since", "24h"]
      }
    }
  }
}
