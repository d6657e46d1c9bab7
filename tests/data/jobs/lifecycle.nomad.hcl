# Lifecycle hooks: a prestart init task, a prestart sidecar and a poststop cleanup.
job "lifecycle" {
  group "app" {
    task "init" {
      driver = "raw_exec"

      lifecycle {
        hook = "prestart"
      }

      config {
        command = "/opt/app/migrate"
      }
    }

    task "proxy" {
      driver = "docker"

      lifecycle {
        hook    = "prestart"
        sidecar = true
      }

      config {
        image = "envoyproxy/envoy:v1.31.0"
      }
    }

    task "main" {
      driver = "docker"

      config {
        image = "example/app:1.0"
      }
    }

    task "cleanup" {
      driver = "raw_exec"

      lifecycle {
        hook = "poststop"
      }

      config {
        command = "/opt/app/cleanup"
      }
    }

    task "announce" {
      driver = "raw_exec"

      lifecycle {
        hook = "poststart"
      }

      config {
        command = "/opt/app/announce"
      }
    }
  }
}
