# A sticky, migrating ephemeral disk and a group-level migrate block.
job "database" {
  group "db" {
    ephemeral_disk {
      sticky  = true
      migrate = true
      size    = 2048
    }

    migrate {
      max_parallel     = 2
      health_check     = "task_states"
      min_healthy_time = "20s"
    }

    task "postgres" {
      driver = "docker"

      config {
        image = "postgres:16"
      }

      resources {
        cpu    = 1000
        memory = 2048
      }
    }
  }
}
