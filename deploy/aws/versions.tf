# The AWS side of dataferry: DynamoDB tables derived from the pipeline spec.
# (The Snowflake objects will live in their own root module, deploy/snowflake, so this
# one validates with only the AWS provider.)
terraform {
  required_version = ">= 1.10" # the S3 backend's own lock file (use_lockfile) needs 1.10

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.92, < 6.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project     = "dataferry"
      environment = var.environment
      managed_by  = "terraform"
    }
  }
}
