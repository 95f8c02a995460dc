variable "region" {
  description = "AWS region for every resource of this stack."
  type        = string
  default     = "us-west-2"
}

variable "environment" {
  description = "Environment name (dev, staging, prod); part of tags and names."
  type        = string
  default     = "dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment must be 2-16 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "dynamodb_tables" {
  description = "The pipeline spec's DynamoDB tables, written by `dataferry tf export -o deploy/aws/dynamodb_tables.auto.tfvars.json`. Do not edit by hand: change the spec and export again."
  type = map(object({
    hash_key               = string
    range_key              = optional(string)
    attributes             = list(object({ name = string, type = string }))
    billing_mode           = optional(string, "PAY_PER_REQUEST")
    point_in_time_recovery = optional(bool, false)
    global_secondary_indexes = optional(list(object({
      name               = string
      hash_key           = string
      range_key          = optional(string)
      projection_type    = string
      non_key_attributes = optional(list(string))
    })), [])
  }))

  validation {
    condition = alltrue([
      for t in values(var.dynamodb_tables) : alltrue([for a in t.attributes : contains(["S", "N", "B"], a.type)])
    ])
    error_message = "Key attribute types must be S, N or B."
  }

  validation {
    condition     = alltrue([for name in keys(var.dynamodb_tables) : can(regex("^[A-Za-z0-9_.-]{3,255}$", name))])
    error_message = "DynamoDB table names are 3-255 characters of letters, digits, '_', '-' and '.'."
  }
}

variable "point_in_time_recovery" {
  description = "Turn on point-in-time recovery for every table, whatever the spec says (the spec's flag is for local stacks)."
  type        = bool
  default     = true
}

variable "table_name_prefix" {
  description = "Prefix for every table name (for example \"prod-\"); empty keeps the spec's names."
  type        = string
  default     = ""
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for table encryption; null uses the AWS-owned key."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Protect the tables from deletion (turn off only to tear down a test environment)."
  type        = bool
  default     = true
}

# ---- network: RDS is private, reachable only from what is listed here
variable "vpc_id" {
  description = "VPC for the database."
  type        = string
}

variable "private_subnet_ids" {
  description = "At least two private subnets (in different availability zones) for the database."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "RDS needs subnets in at least two availability zones."
  }
}

variable "allowed_cidr_blocks" {
  description = "CIDR blocks that may connect to PostgreSQL on 5432 (keep them narrow; never 0.0.0.0/0)."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.allowed_cidr_blocks, "0.0.0.0/0")
    error_message = "The database must not be open to the whole internet."
  }
}

variable "allowed_security_group_ids" {
  description = "Security groups (runners, bastions, the pipeline's tasks) that may connect on 5432."
  type        = list(string)
  default     = []
}

# ---- database
variable "db_name" {
  description = "The database dataferry loads into."
  type        = string
  default     = "dataferry"
}

variable "db_username" {
  description = "Master user name; its password is generated and kept in Secrets Manager by RDS."
  type        = string
  default     = "dataferry_admin"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.micro"
}

variable "db_allocated_storage_gb" {
  description = "Storage in GiB (gp3)."
  type        = number
  default     = 20
}

variable "db_backup_retention_days" {
  description = "Days of automated backups (1-35)."
  type        = number
  default     = 7

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "Automated backups must be kept 1 to 35 days."
  }
}

variable "db_skip_final_snapshot" {
  description = "Skip the snapshot when the instance is deleted (true only for throwaway environments)."
  type        = bool
  default     = false
}

variable "db_monitoring_interval" {
  description = "Seconds between enhanced monitoring samples (1, 5, 10, 15, 30 or 60)."
  type        = number
  default     = 60

  validation {
    condition     = contains([1, 5, 10, 15, 30, 60], var.db_monitoring_interval)
    error_message = "Enhanced monitoring samples every 1, 5, 10, 15, 30 or 60 seconds."
  }
}

variable "db_performance_insights" {
  description = "Turn on Performance Insights."
  type        = bool
  default     = false
}

variable "pipeline_db_user" {
  description = "The PostgreSQL role the pipeline logs in as with IAM authentication (rds-db:connect)."
  type        = string
  default     = "dataferry"
}

# ---- who runs the pipeline
variable "github_repository" {
  description = "owner/name of the GitHub repository whose workflows may assume the pipeline role (OIDC); null: no role."
  type        = string
  default     = null

  validation {
    condition     = var.github_repository == null || can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository is owner/name, without wildcards."
  }
}

variable "github_environment" {
  description = "The GitHub environment whose jobs may assume the role (jobs elsewhere cannot)."
  type        = string
  default     = "production"
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC provider (false when it already exists)."
  type        = bool
  default     = true
}
