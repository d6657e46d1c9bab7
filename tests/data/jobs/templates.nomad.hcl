# Templates rendered into the task dir: embedded heredocs, files, env templates, signals.
job "templated" {
  group "app" {
    task "app" {
      driver = "docker"

      config {
        image = "example/app:1.0"
      }

      template {
        data        = <<EOF
listen = "0.0.0.0:{{ env "NOMAD_PORT_http" }}"
{{ range nomadService "db" }}db = "{{ .Address }}:{{ .Port }}"{{ end }}
EOF
        destination = "local/app.toml"
      }

      template {
        source        = "local/nginx.conf.tpl"
        destination   = "local/nginx.conf"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        splay         = "10s"
        perms         = "0600"
      }

      template {
        data = <<-EOT
          DB_USER={{ key "app/db/user" }}
          LOG_DIR=${NOMAD_ALLOC_DIR}/logs
          EOT
        destination          = "secrets/app.env"
        env                  = true
        change_mode          = "noop"
        left_delimiter       = "[["
        right_delimiter      = "]]"
        error_on_missing_key = true
      }
    }
  }
}
