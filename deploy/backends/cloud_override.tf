# HCP Terraform (Terraform Cloud) instead of S3 for a root module's state: copy this file
# into deploy/aws or deploy/snowflake. A cloud block in an *_override.tf file replaces the
# module's backend block. Organization and workspace come from the environment, so one
# file serves every environment:
#   TF_CLOUD_ORGANIZATION=acme TF_WORKSPACE=dataferry-prod terraform init
# (TF_TOKEN_app_terraform_io, or `terraform login`, authenticates.)
terraform {
  cloud {}
}
