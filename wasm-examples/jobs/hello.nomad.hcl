# A batch job running the `hello` WASI program on caravan's native `wasm` driver: the program is
# fetched into the task's local/ dir by an artifact, prints its arguments and environment, and
# exits. Run it with the examples' build directory:
#
#   caravan job run -var wasm_dir=$CARGO_TARGET_DIR/wasm-guests/wasm32-wasip1/release hello.nomad.hcl
#   caravan alloc logs <alloc-id>
variable "wasm_dir" {
  type        = string
  description = "The directory holding the built examples (hello.wasm, counter.wasm)"
}

job "hello-wasm" {
  type = "batch"

  group "hello" {
    task "hello" {
      driver = "wasm"

      artifact {
        source      = "file://${var.wasm_dir}/hello.wasm"
        destination = "local/"
      }

      config {
        module = "local/hello.wasm"
        args   = ["from", "caravan"]
      }

      env {
        GREETING = "hello from a Wasm task"
      }

      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
