# State in S3 with S3's own lock file, as deploy/aws:
#   terraform init -backend-config=environments/prod.s3.tfbackend
# For HCP Terraform instead, copy ../backends/cloud_override.tf here.
terraform {
  backend "s3" {}
}
