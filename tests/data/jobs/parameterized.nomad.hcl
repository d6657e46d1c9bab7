# A parameterized job: a template dispatched with a payload and meta.
job "transcode" {
  type = "batch"

  parameterized {
    payload       = "required"
    meta_required = ["input", "profile"]
    meta_optional = ["bitrate"]
  }

  meta {
    profile = "default"
  }

  group "transcode" {
    task "ffmpeg" {
      driver = "docker"

      config {
        image = "jrottenberg/ffmpeg:6.1"
        args  = ["-i", "${NOMAD_META_input}", "-b:v", "${NOMAD_META_bitrate}"]
      }

      resources {
        cpu    = 2000
        memory = 1024
      }
    }
  }
}
