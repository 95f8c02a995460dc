output "warehouse" {
  description = "dataferry's virtual warehouse (SNOWFLAKE_WAREHOUSE)."
  value       = snowflake_warehouse.dataferry.name
}

output "database" {
  description = "dataferry's database (SNOWFLAKE_DATABASE)."
  value       = snowflake_database.dataferry.name
}

output "role" {
  description = "The pipeline's role (SNOWFLAKE_ROLE)."
  value       = snowflake_account_role.loader.name
}

output "user" {
  description = "The pipeline's service user (SNOWFLAKE_USER); its private key is SNOWFLAKE_PRIVATE_KEY_PATH."
  value       = snowflake_service_user.pipeline.name
}

output "reader_role" {
  description = "Read-only on dataferry's tables (future grants): give it to analysts' roles."
  value       = snowflake_account_role.reader.name
}

output "resource_monitor" {
  description = "The warehouse's monthly credit ceiling."
  value       = snowflake_resource_monitor.dataferry.name
}

output "storage_integration" {
  description = "The storage integration (warehouse.snowflake.storage_integration), when var.exports is set."
  value       = one(snowflake_storage_integration.exports[*].name)
}

output "storage_aws_iam_user_arn" {
  description = "Snowflake's IAM user that assumes the exports role (deploy/aws's snowflake_storage_integration.iam_user_arn)."
  value       = one(snowflake_storage_integration.exports[*].storage_aws_iam_user_arn)
}

output "storage_aws_external_id" {
  description = "The external ID that role's trust requires (deploy/aws's snowflake_storage_integration.external_id)."
  value       = one(snowflake_storage_integration.exports[*].storage_aws_external_id)
}
