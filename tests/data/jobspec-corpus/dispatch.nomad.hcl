# A parameterized job whose payload is written to a file in the task dir.
job "transcode" {
  type = "batch"

  parameterized {
    payload       = "required"
    meta_required = ["input"]
    meta_optional = ["profile"]
  }

  group "g" {
    task "ffmpeg" {
      driver = "raw_exec"
      config {
        command = "/usr/bin/ffmpeg"
        args    = ["-i", "${NOMAD_META_input}"]
      }
      dispatch_payload {
        file = "input.json"
      }
    }
  }
}
