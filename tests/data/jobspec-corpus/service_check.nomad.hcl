# A native (provider = "nomad") service with every argument caravan keeps, and an http check
# with headers, a body, thresholds and check_restart.
job "checked" {
  group "web" {
    network {
      port "http" {
        to = 8080
      }
    }

    service {
      name                = "web"
      provider            = "nomad"
      port                = "http"
      tags                = ["urlprefix-/"]
      canary_tags         = ["canary"]
      enable_tag_override = true

      meta {
        version = "2"
      }
      canary_meta {
        version = "3"
      }
      tagged_addresses {
        lan = "10.0.0.5"
      }

      check {
        name                     = "ready"
        type                     = "http"
        path                     = "/health"
        method                   = "POST"
        body                     = "{\"check\": true}"
        interval                 = "5s"
        timeout                  = "1s"
        success_before_passing   = 2
        failures_before_critical = 3
        failures_before_warning  = 1
        on_update                = "ignore_warnings"
        tls_skip_verify          = true

        header {
          Authorization = ["Basic ZXhhbXBsZQ=="]
        }

        check_restart {
          limit           = 3
          grace           = "90s"
          ignore_warnings = true
        }
      }
    }

    task "server" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
    }
  }
}
