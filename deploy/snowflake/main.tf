locals {
  warehouse   = "${var.name_prefix}DATAFERRY_WH"
  database    = "${var.name_prefix}${var.database_name}"
  role        = "${var.name_prefix}DATAFERRY_LOADER"
  reader      = "${var.name_prefix}DATAFERRY_READER"
  user        = "${var.name_prefix}DATAFERRY_SVC"
  monitor     = "${var.name_prefix}DATAFERRY_MONITOR"
  integration = "${var.name_prefix}DATAFERRY_EXPORTS"
}

# A ceiling on what the warehouse can cost.
resource "snowflake_resource_monitor" "dataferry" {
  provider                  = snowflake.accountadmin
  name                      = local.monitor
  credit_quota              = var.monthly_credit_quota
  notify_triggers           = [75, 90]
  suspend_trigger           = 100
  suspend_immediate_trigger = 110
}

# SYSADMIN, which owns the warehouse, may then attach the monitor to it.
resource "snowflake_grant_privileges_to_account_role" "monitor_to_sysadmin" {
  provider          = snowflake.accountadmin
  account_role_name = "SYSADMIN"
  privileges        = ["MONITOR", "MODIFY"]
  on_account_object {
    object_type = "RESOURCE MONITOR"
    object_name = snowflake_resource_monitor.dataferry.name
  }
}

resource "snowflake_warehouse" "dataferry" {
  provider            = snowflake.sysadmin
  name                = local.warehouse
  resource_monitor    = snowflake_resource_monitor.dataferry.name
  depends_on          = [snowflake_grant_privileges_to_account_role.monitor_to_sysadmin]
  warehouse_size      = var.warehouse_size
  auto_suspend        = var.auto_suspend_seconds
  auto_resume         = "true"
  initially_suspended = true
  comment             = "dataferry etl: COPY INTO, merges and models."
}

resource "snowflake_database" "dataferry" {
  provider                    = snowflake.sysadmin
  name                        = local.database
  data_retention_time_in_days = var.data_retention_days
  comment                     = "dataferry: raw_postgres, raw_dynamodb, the models and the ledger."
}

# The role has what dataferry does and no more: use the warehouse; use the database and
# create its schemas there (raw_postgres, raw_dynamodb, analytics, dataferry), which it
# then owns; stage and create tables in PUBLIC, its session schema. No account-level
# privilege, no ownership of the database.
resource "snowflake_account_role" "loader" {
  provider = snowflake.securityadmin
  name     = local.role
  comment  = "dataferry's pipeline."
}

resource "snowflake_grant_privileges_to_account_role" "warehouse" {
  provider          = snowflake.securityadmin
  account_role_name = snowflake_account_role.loader.name
  privileges        = ["USAGE"]
  on_account_object {
    object_type = "WAREHOUSE"
    object_name = snowflake_warehouse.dataferry.name
  }
}

resource "snowflake_grant_privileges_to_account_role" "database" {
  provider          = snowflake.securityadmin
  account_role_name = snowflake_account_role.loader.name
  privileges        = ["USAGE", "CREATE SCHEMA"]
  on_account_object {
    object_type = "DATABASE"
    object_name = snowflake_database.dataferry.name
  }
}

resource "snowflake_grant_privileges_to_account_role" "session_schema" {
  provider          = snowflake.securityadmin
  account_role_name = snowflake_account_role.loader.name
  privileges        = ["USAGE", "CREATE TABLE", "CREATE STAGE"]
  on_schema {
    schema_name = "\"${snowflake_database.dataferry.name}\".\"PUBLIC\""
  }
}

# Snowflake reads DynamoDB exports from S3 itself (warehouse.snowflake.storage_integration):
# an integration on deploy/aws's role, limited to the exports' prefix. Creating an
# integration is ACCOUNTADMIN's alone, as the resource monitor is.
resource "snowflake_storage_integration" "exports" {
  count                     = var.exports == null ? 0 : 1
  provider                  = snowflake.accountadmin
  name                      = local.integration
  type                      = "EXTERNAL_STAGE"
  storage_provider          = "S3"
  enabled                   = true
  storage_aws_role_arn      = var.exports.role_arn
  storage_allowed_locations = ["s3://${var.exports.bucket}/${var.exports.prefix}"]
  comment                   = "dataferry: DynamoDB exports, read by COPY INTO."
}

resource "snowflake_grant_privileges_to_account_role" "integration" {
  count             = var.exports == null ? 0 : 1
  provider          = snowflake.securityadmin
  account_role_name = snowflake_account_role.loader.name
  privileges        = ["USAGE"]
  on_account_object {
    object_type = "INTEGRATION"
    object_name = snowflake_storage_integration.exports[0].name
  }
}

# The export path's temporary JavaScript functions (json, set and _attributes columns).
resource "snowflake_grant_privileges_to_account_role" "export_functions" {
  count             = var.exports == null ? 0 : 1
  provider          = snowflake.securityadmin
  account_role_name = snowflake_account_role.loader.name
  privileges        = ["CREATE FUNCTION"]
  on_schema {
    schema_name = "\"${snowflake_database.dataferry.name}\".\"PUBLIC\""
  }
}

# Administrators inherit the role, so they can read and manage what it creates.
resource "snowflake_grant_account_role" "to_sysadmin" {
  provider         = snowflake.securityadmin
  role_name        = snowflake_account_role.loader.name
  parent_role_name = "SYSADMIN"
}

resource "snowflake_service_user" "pipeline" {
  provider          = snowflake.securityadmin
  name              = local.user
  comment           = "dataferry's pipeline (key-pair authentication only)."
  default_role      = snowflake_account_role.loader.name
  default_warehouse = snowflake_warehouse.dataferry.name
  default_namespace = "${snowflake_database.dataferry.name}.PUBLIC"
  rsa_public_key    = var.service_user_rsa_public_key
}

resource "snowflake_grant_account_role" "to_pipeline" {
  provider  = snowflake.securityadmin
  role_name = snowflake_account_role.loader.name
  user_name = snowflake_service_user.pipeline.name
}

# ---- read-only: every table and view dataferry makes in its database (the raw schemas,
# the models, its ledger), now and as they are made (future grants).
resource "snowflake_account_role" "reader" {
  provider = snowflake.securityadmin
  name     = local.reader
  comment  = "Read-only on dataferry's raw tables and models."
}

resource "snowflake_grant_privileges_to_account_role" "reader_database" {
  provider          = snowflake.securityadmin
  account_role_name = snowflake_account_role.reader.name
  privileges        = ["USAGE"]
  on_account_object {
    object_type = "DATABASE"
    object_name = snowflake_database.dataferry.name
  }
}

resource "snowflake_grant_privileges_to_account_role" "reader_warehouse" {
  provider          = snowflake.securityadmin
  account_role_name = snowflake_account_role.reader.name
  privileges        = ["USAGE"]
  on_account_object {
    object_type = "WAREHOUSE"
    object_name = snowflake_warehouse.dataferry.name
  }
}

resource "snowflake_grant_privileges_to_account_role" "reader_schemas" {
  provider          = snowflake.securityadmin
  account_role_name = snowflake_account_role.reader.name
  privileges        = ["USAGE"]
  on_schema {
    future_schemas_in_database = snowflake_database.dataferry.name
  }
}

resource "snowflake_grant_privileges_to_account_role" "reader_tables" {
  for_each          = toset(["TABLES", "VIEWS"])
  provider          = snowflake.securityadmin
  account_role_name = snowflake_account_role.reader.name
  privileges        = ["SELECT"]
  on_schema_object {
    future {
      object_type_plural = each.value
      in_database        = snowflake_database.dataferry.name
    }
  }
}

# and what a run made before this role existed
resource "snowflake_grant_privileges_to_account_role" "reader_existing_schemas" {
  provider          = snowflake.securityadmin
  account_role_name = snowflake_account_role.reader.name
  privileges        = ["USAGE"]
  on_schema {
    all_schemas_in_database = snowflake_database.dataferry.name
  }
}

resource "snowflake_grant_privileges_to_account_role" "reader_existing_tables" {
  for_each          = toset(["TABLES", "VIEWS"])
  provider          = snowflake.securityadmin
  account_role_name = snowflake_account_role.reader.name
  privileges        = ["SELECT"]
  on_schema_object {
    all {
      object_type_plural = each.value
      in_database        = snowflake_database.dataferry.name
    }
  }
}

resource "snowflake_grant_account_role" "reader_to" {
  for_each         = toset(var.readers)
  provider         = snowflake.securityadmin
  role_name        = snowflake_account_role.reader.name
  parent_role_name = each.value
}

resource "snowflake_grant_account_role" "reader_to_sysadmin" {
  provider         = snowflake.securityadmin
  role_name        = snowflake_account_role.reader.name
  parent_role_name = "SYSADMIN"
}
