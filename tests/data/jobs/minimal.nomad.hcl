# The smallest useful job: every default comes from Nomad's rules.
job "minimal" {
  group "app" {
    task "hello" {
      driver = "raw_exec"

      config {
        command = "/bin/echo"
        args    = ["hello"]
      }
    }
  }
}
