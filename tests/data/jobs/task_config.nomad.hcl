# A driver config is free-form: arguments become JSON values, nested blocks lists of objects.
job "registry" {
  group "registry" {
    network {
      port "http" {
        to = 5000
      }
    }

    task "registry" {
      driver = "docker"

      config {
        image       = "registry:2.8"
        ports       = ["http"]
        force_pull  = false
        shm_size    = 67108864
        cpu_cfs     = 1.5
        entrypoint  = null
        labels = {
          team = "platform"
          tier = "infra"
        }

        mount {
          type   = "bind"
          source = "local/config.yml"
          target = "/etc/docker/registry/config.yml"
        }

        mount {
          type     = "volume"
          target   = "/var/lib/registry"
          readonly = false

          volume_options {
            no_copy = true
          }
        }

        logging {
          type = "json-file"

          config {
            max-size = "10m"
            max-file = 3
          }
        }

        auth "registry.example.com" {
          username = "ci"
        }
      }
    }
  }
}
