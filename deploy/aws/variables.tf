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
