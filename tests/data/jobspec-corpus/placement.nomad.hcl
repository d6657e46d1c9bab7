# Placement and policies: constraint, affinity, spread, update, migrate, reschedule,
# ephemeral_disk, max_client_disconnect.
job "placed" {
  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }

  spread {
    attribute = "${node.datacenter}"
    weight    = 100
    target "dc1" {
      percent = 60
    }
    target "dc2" {
      percent = 40
    }
  }

  update {
    max_parallel     = 2
    min_healthy_time = "15s"
    healthy_deadline = "5m"
    auto_revert      = true
    canary           = 1
  }

  group "g" {
    count = 2

    affinity {
      attribute = "${meta.rack}"
      value     = "r1"
      weight    = 50
    }

    migrate {
      max_parallel     = 1
      health_check     = "task_states"
      min_healthy_time = "5s"
      healthy_deadline = "2m"
    }

    reschedule {
      attempts       = 3
      interval       = "1h"
      delay          = "30s"
      delay_function = "fibonacci"
      max_delay      = "10m"
      unlimited      = false
    }

    ephemeral_disk {
      size    = 500
      sticky  = true
      migrate = true
    }

    max_client_disconnect = "1h"

    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
    }
  }
}
