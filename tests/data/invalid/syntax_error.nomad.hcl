job "example" {
  group "cache" {
    count =
  }
}
