variable "region" {
  description = "Region of the state bucket (the S3 backend files name it too)."
  type        = string
  default     = "us-west-2"
}

variable "state_bucket_name" {
  description = "The Terraform state bucket of deploy/aws and deploy/snowflake: bucket names are global, so choose one, and name it in the environments' *.s3.tfbackend files."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.state_bucket_name))
    error_message = "An S3 bucket name: 3-63 lowercase letters, digits, dots and dashes."
  }
}

variable "github_repository" {
  description = "owner/name of the repository whose workflows plan and apply."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository is owner/name, without wildcards."
  }
}

variable "github_environment" {
  description = "The GitHub environment whose jobs may apply (set required reviewers on it)."
  type        = string
  default     = "production"
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC provider (false when it exists already)."
  type        = bool
  default     = true
}

variable "apply_policy_arns" {
  description = "Managed policies of the apply role. It creates IAM roles, RDS, ECS, S3 and more: AdministratorAccess by default, narrowed by its trust (the production environment only, after review)."
  type        = list(string)
  default     = ["arn:aws:iam::aws:policy/AdministratorAccess"]
}
