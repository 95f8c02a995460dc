# State in S3, locked with S3's own lock file (DynamoDB locking is deprecated). The
# bucket, key and region come from an environment's backend file:
#   terraform init -backend-config=environments/prod.s3.tfbackend
# (`terraform init -backend=false` checks the module without any state, as CI does.)
terraform {
  backend "s3" {}
}
