job "example" {
  group "cache" {
    task ".." {
      driver = "raw_exec"
    }
  }
}
