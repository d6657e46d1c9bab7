# secret blocks (Nomad 1.10): a job-level one given to every task, and a task's own. The Vault
# provider is refused at registration; the nomad provider is not.
job "app" {
  secret "shared" {
    provider = "nomad"
    path     = "nomad/jobs/app/shared"
  }

  group "g" {
    task "web" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }

      secret "db" {
        provider = "vault"
        path     = "secret/data/db"
        config {
          engine = "kv_v2"
        }
        env {
          DB_PASSWORD = "password"
        }
      }
    }
  }
}
