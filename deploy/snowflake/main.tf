locals {
  warehouse = "${var.name_prefix}DATAFERRY_WH"
  database  = "${var.name_prefix}${var.database_name}"
  role      = "${var.name_prefix}DATAFERRY_LOADER"
  user      = "${var.name_prefix}DATAFERRY_SVC"
}

resource "snowflake_warehouse" "dataferry" {
  name                = local.warehouse
  warehouse_size      = var.warehouse_size
  auto_suspend        = var.auto_suspend_seconds
  auto_resume         = "true"
  initially_suspended = true
  comment             = "dataferry etl: COPY INTO, merges and models."
}

resource "snowflake_database" "dataferry" {
  name                        = local.database
  data_retention_time_in_days = var.data_retention_days
  comment                     = "dataferry: raw_postgres, raw_dynamodb, the models and the ledger."
}

# The role has what dataferry does and no more: use the warehouse; use the database and
# create its schemas there (raw_postgres, raw_dynamodb, analytics, dataferry), which it
# then owns; stage and create tables in PUBLIC, its session schema. No account-level
# privilege, no ownership of the database.
resource "snowflake_account_role" "loader" {
  name    = local.role
  comment = "dataferry's pipeline."
}

resource "snowflake_grant_privileges_to_account_role" "warehouse" {
  account_role_name = snowflake_account_role.loader.name
  privileges        = ["USAGE"]
  on_account_object {
    object_type = "WAREHOUSE"
    object_name = snowflake_warehouse.dataferry.name
  }
}

resource "snowflake_grant_privileges_to_account_role" "database" {
  account_role_name = snowflake_account_role.loader.name
  privileges        = ["USAGE", "CREATE SCHEMA"]
  on_account_object {
    object_type = "DATABASE"
    object_name = snowflake_database.dataferry.name
  }
}

resource "snowflake_grant_privileges_to_account_role" "session_schema" {
  account_role_name = snowflake_account_role.loader.name
  privileges        = ["USAGE", "CREATE TABLE", "CREATE STAGE"]
  on_schema {
    schema_name = "\"${snowflake_database.dataferry.name}\".\"PUBLIC\""
  }
}

# Administrators inherit the role, so they can read and manage what it creates.
resource "snowflake_grant_account_role" "to_sysadmin" {
  role_name        = snowflake_account_role.loader.name
  parent_role_name = "SYSADMIN"
}

resource "snowflake_service_user" "pipeline" {
  name              = local.user
  comment           = "dataferry's pipeline (key-pair authentication only)."
  default_role      = snowflake_account_role.loader.name
  default_warehouse = snowflake_warehouse.dataferry.name
  default_namespace = "${snowflake_database.dataferry.name}.PUBLIC"
  rsa_public_key    = var.service_user_rsa_public_key
}

resource "snowflake_grant_account_role" "to_pipeline" {
  role_name = snowflake_account_role.loader.name
  user_name = snowflake_service_user.pipeline.name
}
