# A service of two long-running WASI programs that print a line a second, on the `wasm` driver.
#
#   caravan job run -var wasm_dir=$CARGO_TARGET_DIR/wasm-guests/wasm32-wasip1/release counter.nomad.hcl
#   caravan alloc logs -f <alloc-id>
variable "wasm_dir" {
  type        = string
  description = "The directory holding the built examples (hello.wasm, counter.wasm)"
}

job "counter-wasm" {
  group "counter" {
    count = 2

    task "counter" {
      driver = "wasm"

      artifact {
        source      = "file://${var.wasm_dir}/counter.wasm"
        destination = "local/"
      }

      config {
        module          = "local/counter.wasm"
        memory_limit_mb = 16
      }

      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
