# Artifacts fetched before the task starts, with getter options and headers.
job "fetcher" {
  group "app" {
    task "app" {
      driver = "raw_exec"

      config {
        command = "local/app/bin/app"
      }

      artifact {
        source      = "https://example.com/releases/app-1.2.3.tar.gz"
        destination = "local/app"

        options {
          checksum = "sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
        }

        headers {
          User-Agent = "nomad"
        }
      }

      artifact {
        source      = "https://example.com/config/app.yml"
        destination = "local/app.yml"
        mode        = "file"
        headers = {
          Authorization = "Bearer token"
        }
      }

      artifact {
        source = "git::https://github.com/example/scripts"
        mode   = "dir"
      }
    }
  }
}
