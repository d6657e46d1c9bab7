# Every artifact argument, with options and headers blocks.
job "fetch" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "local/app"
      }
      artifact {
        source      = "https://example.com/app.tar.gz"
        destination = "local/"
        mode        = "any"
        insecure    = false
        chown       = true
        options {
          checksum = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        }
        headers {
          User-Agent = "caravan"
        }
      }
    }
  }
}
