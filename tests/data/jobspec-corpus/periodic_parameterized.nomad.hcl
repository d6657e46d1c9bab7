# periodic with several crons and parameterized with meta and a payload file.
job "report" {
  type = "batch"

  periodic {
    crons            = ["0 6 * * *", "0 18 * * *"]
    prohibit_overlap = true
    time_zone        = "Europe/Paris"
  }

  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/date"
      }
    }
  }
}
