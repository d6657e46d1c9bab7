# Task arguments and small blocks: lifecycle, leader, kill_signal, kill_timeout, shutdown_delay,
# logs (disabled), restart with render_templates, meta as an attribute, env as a block.
job "tasks" {
  type = "batch"

  group "g" {
    restart {
      attempts         = 1
      delay            = "5s"
      interval         = "10m"
      mode             = "fail"
      render_templates = true
    }

    task "init" {
      driver = "raw_exec"
      lifecycle {
        hook    = "prestart"
        sidecar = false
      }
      config {
        command = "/bin/true"
      }
      logs {
        disabled = true
      }
    }

    task "main" {
      driver         = "raw_exec"
      leader         = true
      kill_signal    = "SIGINT"
      kill_timeout   = "20s"
      shutdown_delay = "3s"
      user           = "nobody"
      meta = {
        "team.name" = "storage"
      }
      env {
        MODE = "batch"
      }
      config {
        command = "/bin/sleep"
        args    = ["30"]
      }
      logs {
        max_files     = 3
        max_file_size = 5
      }
    }
  }
}
