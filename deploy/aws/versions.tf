# The AWS side of dataferry: DynamoDB tables derived from the pipeline spec.
# (The Snowflake objects will live in their own root module, deploy/snowflake, so this
# one validates with only the AWS provider.)
terraform {
  required_version = ">= 1.6"

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
