job "nightly" {
  type = "batch"

  periodic {
    crons = ["0 3 * * *", "0 25 * * *"]
  }

  group "report" {
    task "run" {
      driver = "raw_exec"
    }
  }
}
