# env and meta as blocks or as maps; numbers and bools become strings.
job "configured" {
  meta = {
    "owner.team" = "platform"
    cost_center  = 1234
  }

  group "app" {
    meta {
      tier    = "backend"
      enabled = true
    }

    task "app" {
      driver = "raw_exec"

      config {
        command = "/opt/app/bin/app"
      }

      env {
        APP_ENV     = "production"
        APP_WORKERS = 4
        APP_DEBUG   = false
        APP_DATA    = "${NOMAD_ALLOC_DIR}/data"
      }

      meta {
        version = "1.2.3"
      }
    }

    task "sidecar" {
      driver = "raw_exec"

      config {
        command = "/opt/app/bin/sidecar"
      }

      env = {
        "LOG.LEVEL" = "info"
        UPSTREAM    = "127.0.0.1:${NOMAD_PORT_http}"
      }
    }
  }
}
