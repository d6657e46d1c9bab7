# Every job-level argument, and several groups (one scaled to zero).
job "platform" {
  name        = "Platform services"
  region      = "europe"
  namespace   = "platform"
  datacenters = ["par1", "ams1"]
  node_pool   = "general"
  priority    = 80
  all_at_once = true
  type        = "service"

  meta {
    owner = "platform-team"
  }

  group "api" {
    count = 2

    task "api" {
      driver = "docker"

      config {
        image = "example/api:3.0"
      }
    }
  }

  group "maintenance" {
    count = 0

    task "maintenance" {
      driver = "docker"

      config {
        image = "example/maintenance:3.0"
      }
    }
  }
}
