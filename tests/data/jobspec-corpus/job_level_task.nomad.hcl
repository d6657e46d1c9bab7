# A task written directly in the job (Nomad's jobspec2 accepts it): a group of its own, named
# after the task, before the written groups.
job "simple" {
  type = "batch"

  task "hello" {
    driver = "raw_exec"
    config {
      command = "/bin/echo"
      args    = ["hello"]
    }
  }

  group "more" {
    task "world" {
      driver = "raw_exec"
      config {
        command = "/bin/echo"
        args    = ["world"]
      }
    }
  }
}
