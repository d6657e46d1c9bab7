# Heredocs (plain and indented) and functions in bare expressions and interpolations.
variable "names" {
  type    = list(string)
  default = ["alpha", "beta"]
}

job "heredocs" {
  type = "batch"

  group "run" {
    count = length(var.names)

    task "script" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args = ["-c", <<-SCRIPT
          echo "names: ${join(",", var.names)}"
          echo "alloc: $NOMAD_ALLOC_ID ${NOMAD_ALLOC_INDEX}"
          SCRIPT
        ]
      }

      env {
        FIRST = upper(var.names[0])
        COUNT = "${length(var.names) + 1}"
        SPLIT = join("+", split(",", "a,b,c"))
      }
    }
  }
}
