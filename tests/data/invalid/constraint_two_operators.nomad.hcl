job "example" {
  constraint {
    attribute = "${node.class}"
    operator  = "="
    regexp    = "^web"
  }

  group "cache" {
    task "redis" {
      driver = "docker"
    }
  }
}
