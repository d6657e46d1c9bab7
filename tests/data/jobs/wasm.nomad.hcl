# A native WebAssembly task run by caravan's wasm driver.
job "hello-wasm" {
  type = "batch"

  group "hello" {
    task "hello" {
      driver = "wasm"

      config {
        module = "local/hello.wasm"
        args   = ["world"]
        wasi {
          preopen_dirs = ["local"]
        }
      }

      artifact {
        source      = "https://example.com/hello.wasm"
        destination = "local/hello.wasm"
        mode        = "file"
      }

      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
