job "first" {
  group "g" {
    task "t" {
      driver = "raw_exec"
    }
  }
}

job "second" {
  group "g" {
    task "t" {
      driver = "raw_exec"
    }
  }
}
