# The group disconnect block (Nomad 1.8+): what happens to allocations of a client that loses
# contact with the servers.
job "resilient" {
  group "cache" {
    disconnect {
      lost_after           = "6h"
      replace              = false
      reconcile            = "keep_original"
    }

    task "redis" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
    }
  }

  group "edge" {
    disconnect {
      stop_on_client_after = "90s"
    }
    prevent_reschedule_on_lost = true
    max_run_duration           = "12h"

    task "agent" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
    }
  }
}
