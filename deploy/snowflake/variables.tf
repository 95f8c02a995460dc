variable "admin_role" {
  description = "The role Terraform works as: it creates the warehouse, database, role and user."
  type        = string
  default     = "ACCOUNTADMIN"
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
