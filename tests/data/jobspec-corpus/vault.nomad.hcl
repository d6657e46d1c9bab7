# A job-level vault block (every task's default) and a task's own: parsed with Nomad's defaults,
# refused at registration.
job "secrets" {
  vault {
    role = "nomad-workloads"
  }

  group "g" {
    task "uses-job-vault" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
    }

    task "own-vault" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
      vault {
        cluster       = "default"
        namespace     = "engineering"
        change_mode   = "signal"
        change_signal = "SIGUSR1"
        disable_file  = true
      }
    }
  }
}
