# Task actions: named commands an operator can run in a running task.
job "db" {
  group "db" {
    task "postgres" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }

      action "vacuum" {
        command = "/usr/bin/vacuumdb"
        args    = ["--all", "--analyze"]
      }

      action "uptime" {
        command = "/usr/bin/uptime"
      }
    }
  }
}
