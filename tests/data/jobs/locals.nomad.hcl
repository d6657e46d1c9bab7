# Locals may use variables, functions and other locals (in any order).
variable "env" {
  default = "staging"
}

locals {
  full_name = "${local.prefix}-${var.env}"
  prefix    = "shop"
}

locals {
  tags  = concat(["base"], [var.env, upper(local.prefix)])
  image = join(":", ["example/shop", "1.0"])
}

job "shop-locals" {
  meta {
    name = local.full_name
  }

  group "web" {
    service {
      name = local.full_name
      tags = local.tags
    }

    task "web" {
      driver = "docker"

      config {
        image = local.image
      }

      env {
        SHOP_ENV = lower("PROD-${var.env}")
      }
    }
  }
}
