# Every template argument, with wait and change_script blocks.
job "tmpl" {
  group "g" {
    task "app" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }

      template {
        data                 = "port = {{ env \"NOMAD_PORT_http\" }}\n"
        destination          = "local/app.conf"
        change_mode          = "signal"
        change_signal        = "SIGUSR1"
        splay                = "10s"
        perms                = "0600"
        uid                  = 1000
        gid                  = 1000
        error_on_missing_key = true

        wait {
          min = "2s"
          max = "30s"
        }
      }

      template {
        source          = "local/in.tpl"
        destination     = "secrets/file.env"
        env             = true
        once            = true
        left_delimiter  = "[["
        right_delimiter = "]]"
        change_mode     = "script"

        change_script {
          command       = "/local/reload.sh"
          args          = ["-v"]
          timeout       = "5s"
          fail_on_error = true
        }
      }
    }
  }
}
