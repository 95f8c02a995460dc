variable "monthly_credit_quota" {
  description = "Credits the warehouse may use a month: notified at 75% and 90%, suspended at 100% (running queries finish) and at 110% at once."
  type        = number
  default     = 20

  validation {
    condition     = var.monthly_credit_quota > 0
    error_message = "monthly_credit_quota must be positive (0 would mean no quota at all)."
  }
}

variable "readers" {
  description = "Roles given DATAFERRY_READER: read-only on every table and view dataferry makes, now and later."
  type        = list(string)
  default     = []
}

variable "name_prefix" {
  description = "Prefix of every object name (for example \"PROD_\")."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[A-Za-z0-9_]*$", var.name_prefix))
    error_message = "name_prefix may hold letters, digits and underscores only."
  }
}

variable "database_name" {
  description = "The database dataferry writes its raw tables, models and ledger into."
  type        = string
  default     = "DATAFERRY"
}

variable "warehouse_size" {
  description = "Size of dataferry's virtual warehouse."
  type        = string
  default     = "XSMALL"

  validation {
    condition     = contains(["XSMALL", "SMALL", "MEDIUM", "LARGE", "XLARGE"], var.warehouse_size)
    error_message = "warehouse_size must be one of XSMALL, SMALL, MEDIUM, LARGE, XLARGE."
  }
}

variable "auto_suspend_seconds" {
  description = "Seconds of inactivity before the warehouse suspends (it resumes on demand)."
  type        = number
  default     = 60

  validation {
    condition     = var.auto_suspend_seconds >= 60
    error_message = "auto_suspend_seconds must be at least 60."
  }
}

variable "data_retention_days" {
  description = "Time Travel retention of the database's tables, in days."
  type        = number
  default     = 1
}

variable "service_user_rsa_public_key" {
  description = "The service user's RSA public key (PEM body, no header lines); its private key stays with the pipeline. Key-pair authentication only: the user has no password."
  type        = string

  validation {
    condition     = length(var.service_user_rsa_public_key) > 200 && !can(regex("PRIVATE", var.service_user_rsa_public_key))
    error_message = "Give the public key (a private key must never be here)."
  }
}

variable "exports" {
  description = "Where dataferry's DynamoDB exports are (deploy/aws's exports_bucket and snowflake_exports_role_arn), to make the storage integration that lets Snowflake read them; null: none."
  type = object({
    bucket   = string
    role_arn = string
    prefix   = optional(string, "dataferry/exports/")
  })
  default = null
}
