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
    ttl_attribute          = optional(string)
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
  description = "CIDR blocks besides the pipeline's task that may connect to PostgreSQL on 5432 (a bastion, a VPN): each a /16 or narrower."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.allowed_cidr_blocks : can(cidrhost(c, 0)) && can(regex("^[0-9.]+/[0-9]+$", c))])
    error_message = "Each allowed_cidr_blocks entry is an IPv4 CIDR block, such as 10.0.8.0/24."
  }

  validation {
    # 0.0.0.0/1 is as open as 0.0.0.0/0 in all but name: the width is what counts
    condition     = alltrue([for c in var.allowed_cidr_blocks : try(tonumber(split("/", c)[1]) >= 16, false)])
    error_message = "No range wider than a /16 may reach the database (0.0.0.0/0, 0.0.0.0/1 and 10.0.0.0/8 are all refused)."
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

variable "db_max_allocated_storage_gb" {
  description = "Storage autoscaling: RDS grows the storage up to this many GiB when it runs short (at least db_allocated_storage_gb)."
  type        = number
  default     = 100

  validation {
    condition     = var.db_max_allocated_storage_gb >= var.db_allocated_storage_gb
    error_message = "db_max_allocated_storage_gb must be at least db_allocated_storage_gb."
  }
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
  description = "Create the account's GitHub OIDC provider; deploy/bootstrap makes it, so only where that module is not used."
  type        = bool
  default     = false
}

# ---- the pipeline task (pipeline_task.tf)
variable "image_tag" {
  description = "The tag of the image in the pipeline's ECR repository that Terraform's task definition names; the workflows register newer revisions with each commit's image."
  type        = string
  default     = "initial"
}

variable "images_kept" {
  description = "Images kept in the ECR repository (older ones expire)."
  type        = number
  default     = 30
}

variable "task_cpu" {
  description = "Fargate CPU units of the task (1024 = 1 vCPU)."
  type        = number
  default     = 1024

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.task_cpu)
    error_message = "Fargate offers 256, 512, 1024, 2048, 4096, 8192 or 16384 CPU units."
  }
}

variable "task_memory" {
  description = "Fargate memory of the task in MiB (dataferry stays under 600 MB at 1M DynamoDB items)."
  type        = number
  default     = 2048
}

variable "task_architecture" {
  description = "X86_64 or ARM64 (the image must be built for it)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.task_architecture)
    error_message = "task_architecture is X86_64 or ARM64."
  }
}

variable "pipeline_command" {
  description = "The dataferry command the task runs (the image's entrypoint is dataferry)."
  type        = list(string)
  default     = ["run", "-c", "production.yaml", "--wait", "300", "--progress", "plain", "--log-format", "json", "--report-dir", "/scratch/reports"]
}

variable "pipeline_environment" {
  description = "More environment variables for the task (plain values; secrets go in pipeline_secrets). Merged over the endpoints Terraform fills in."
  type        = map(string)
  default     = {}
}

variable "pipeline_secrets" {
  description = "Environment variables of the task taken from Secrets Manager at start: name -> secret ARN (optionally with a \":json-key::\" suffix). For Snowflake: SNOWFLAKE_PRIVATE_KEY (the key-pair's PEM) and SNOWFLAKE_PRIVATE_KEY_PASSPHRASE."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for arn in values(var.pipeline_secrets) : can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:", arn))])
    error_message = "pipeline_secrets values are Secrets Manager secret ARNs."
  }
}

variable "pipeline_schedule" {
  description = "Run the task on a schedule, without GitHub: an EventBridge Scheduler expression such as \"cron(0 6 * * ? *)\" or \"rate(1 day)\"; null for no schedule."
  type        = string
  default     = null

  validation {
    condition     = var.pipeline_schedule == null || can(regex("^(cron|rate|at)\\(.+\\)$", var.pipeline_schedule))
    error_message = "pipeline_schedule is cron(...), rate(...) or at(...)."
  }
}

variable "log_retention_days" {
  description = "Days the task's and the database's logs are kept in CloudWatch Logs (a year by default, as audits commonly ask)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days is one of CloudWatch Logs' retention periods (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "export_retention_days" {
  description = "Days DynamoDB exports stay in the exports bucket (the etl reads each once)."
  type        = number
  default     = 7
}

variable "snowflake_storage_integration" {
  description = "deploy/snowflake's storage integration (its storage_aws_iam_user_arn and storage_aws_external_id outputs), to let Snowflake read the exports itself; null: no role for it."
  type = object({
    iam_user_arn = string
    external_id  = string
    prefix       = optional(string, "dataferry/exports/")
  })
  default = null
}

# ---- alarms (alarms.tf)
variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alarms topic (each confirms by mail)."
  type        = list(string)
  default     = []
}

variable "alarm_db_cpu_percent" {
  description = "PostgreSQL CPU (%) above which, for 15 minutes, an alarm is raised."
  type        = number
  default     = 85
}

variable "alarm_db_free_storage_gb" {
  description = "PostgreSQL free storage (GiB) under which an alarm is raised."
  type        = number
  default     = 5
}

variable "alarm_db_freeable_memory_mb" {
  description = "PostgreSQL freeable memory (MiB) under which an alarm is raised."
  type        = number
  default     = 128
}

variable "alarm_db_connections" {
  description = "PostgreSQL connections above which an alarm is raised."
  type        = number
  default     = 80
}
