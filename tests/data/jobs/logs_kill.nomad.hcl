# Log rotation, how a task is stopped, who runs it, and the group's leader task.
job "logger" {
  group "logger" {
    task "main" {
      driver         = "raw_exec"
      user           = "nobody"
      leader         = true
      kill_timeout   = "45s"
      kill_signal    = "SIGINT"
      shutdown_delay = "5s"

      config {
        command = "/opt/logger/main"
      }

      logs {
        max_files     = 3
        max_file_size = 25
      }
    }

    task "quiet" {
      driver = "raw_exec"

      config {
        command = "/opt/logger/quiet"
      }

      logs {
        disabled = true
      }
    }
  }
}
