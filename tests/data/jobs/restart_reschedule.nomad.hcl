# Restart and reschedule blocks written partially are completed from the job type's defaults;
# the job-level reschedule block is every group's default.
job "resilient" {
  reschedule {
    delay          = "1m"
    delay_function = "fibonacci"
    max_delay      = "30m"
  }

  group "api" {
    restart {
      attempts = 5
      interval = "10m"
    }

    reschedule {
      max_delay = "2h"
    }

    task "api" {
      driver = "docker"

      config {
        image = "example/api:2.0.0"
      }

      # A task's restart block is merged over its group's.
      restart {
        delay = "5s"
      }
    }
  }

  group "limited" {
    reschedule {
      attempts  = 3
      interval  = "1h"
      unlimited = false
    }

    task "job" {
      driver = "docker"

      config {
        image = "example/job:2.0.0"
      }
    }
  }
}
