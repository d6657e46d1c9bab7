# A web server on the `raw_exec` driver: busybox httpd serves a page rendered by a template, on a
# port the scheduler picks. `caravan alloc status <alloc-id>` shows the address.
job "web" {
  group "web" {
    count = 1

    network {
      port "http" {}
    }

    task "httpd" {
      driver = "raw_exec"

      template {
        destination = "local/www/index.html"
        data        = <<-EOT
          <h1>Hello from {{ env "NOMAD_ALLOC_NAME" }}</h1>
          <p>Served by caravan on port {{ env "NOMAD_PORT_http" }}.</p>
        EOT
      }

      config {
        command = "/bin/busybox"
        args    = ["httpd", "-f", "-p", "${NOMAD_PORT_http}", "-h", "local/www"]
      }

      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
