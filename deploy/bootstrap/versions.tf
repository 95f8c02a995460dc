# What the Terraform workflow itself stands on, applied once by hand by an administrator:
#   terraform -chdir=deploy/bootstrap init && terraform -chdir=deploy/bootstrap apply \
#     -var github_repository=owner/name -var state_bucket_name=my-org-dataferry-state
# Its own state is local (it makes the bucket the other modules keep theirs in); keep the
# state file safe, or move it into the bucket afterwards (`terraform init -migrate-state`
# with a backend block).
terraform {
  required_version = ">= 1.10"

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
      project    = "dataferry"
      managed_by = "terraform"
      module     = "bootstrap"
    }
  }
}
