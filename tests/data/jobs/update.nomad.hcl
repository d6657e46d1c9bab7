# A job-level update block is every group's default; a group's own block overrides it.
job "rolling" {
  update {
    max_parallel     = 2
    health_check     = "task_states"
    min_healthy_time = "30s"
    healthy_deadline = "5m"
    auto_revert      = true
    stagger          = "1m"
  }

  group "api" {
    count = 4

    update {
      canary       = 1
      auto_promote = true
    }

    task "api" {
      driver = "docker"

      config {
        image = "example/api:1.4.2"
      }
    }
  }

  group "worker" {
    count = 2

    task "worker" {
      driver = "docker"

      config {
        image = "example/worker:1.4.2"
      }
    }
  }
}
