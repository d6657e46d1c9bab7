# consul blocks: a task's default one is accepted; a group's with a namespace is refused.
job "consul" {
  group "api" {
    consul {
      namespace = "prod"
    }

    task "api" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
      consul {
        cluster = "default"
      }
    }
  }
}
