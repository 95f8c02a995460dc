output "dynamodb_table_names" {
  description = "Table name per dataset table of the spec."
  value       = { for k, t in aws_dynamodb_table.dataset : k => t.name }
}

output "dynamodb_table_arns" {
  description = "Table ARN per dataset table of the spec (for least-privilege IAM policies)."
  value       = { for k, t in aws_dynamodb_table.dataset : k => t.arn }
}

output "rds_endpoint" {
  description = "Host name of the PostgreSQL instance (private)."
  value       = aws_db_instance.postgres.address
}

output "rds_port" {
  description = "PostgreSQL port."
  value       = aws_db_instance.postgres.port
}

output "rds_database" {
  description = "Database name."
  value       = aws_db_instance.postgres.db_name
}

output "rds_master_secret_arn" {
  description = "Secrets Manager secret holding the master user's generated password: for `dataferry db bootstrap` only; the pipeline logs in as rds_pipeline_user."
  value       = aws_db_instance.postgres.master_user_secret[0].secret_arn
}

output "dynamodb_ledger_table" {
  description = "dataferry's ledger of DynamoDB loads."
  value       = aws_dynamodb_table.ledger.name
}

output "pipeline_policy_arn" {
  description = "The least-privilege policy for whatever runs the pipeline."
  value       = aws_iam_policy.pipeline.arn
}

output "github_role_arn" {
  description = "Role for GitHub Actions (aws-actions/configure-aws-credentials role-to-assume), if made."
  value       = try(aws_iam_role.github_pipeline[0].arn, null)
}

output "aws_region" {
  description = "The region of every resource here (dataferry --from-terraform reads it)."
  value       = var.region
}

output "rds_username" {
  description = "The master user's name (its password is in rds_master_secret_arn)."
  value       = aws_db_instance.postgres.username
}

output "rds_pipeline_user" {
  description = "The database role the pipeline logs in as with IAM tokens (made by `dataferry db bootstrap`)."
  value       = var.pipeline_db_user
}

output "dynamodb_export_bucket" {
  description = "Where DynamoDB table exports land (etl.method: export); --from-terraform sets stores.dynamodb.export_bucket."
  value       = aws_s3_bucket.exports.bucket
}

output "pipeline_ecr_repository_url" {
  description = "The pipeline image's ECR repository (tags are commits, immutable)."
  value       = aws_ecr_repository.pipeline.repository_url
}

output "pipeline_cluster" {
  description = "The ECS cluster the pipeline task runs in."
  value       = aws_ecs_cluster.pipeline.name
}

output "pipeline_task_family" {
  description = "The task definition family (the workflows register a revision per commit)."
  value       = aws_ecs_task_definition.pipeline.family
}

output "pipeline_subnet_ids" {
  description = "The private subnets the task runs in."
  value       = var.private_subnet_ids
}

output "pipeline_security_group_id" {
  description = "The task's security group (PostgreSQL lets it in)."
  value       = aws_security_group.pipeline.id
}

output "pipeline_log_group" {
  description = "CloudWatch Logs group of the task's output."
  value       = aws_cloudwatch_log_group.pipeline.name
}

output "alarms_topic_arn" {
  description = "SNS topic of every alarm and of the pipeline task's failures."
  value       = aws_sns_topic.alarms.arn
}

output "snowflake_exports_role_arn" {
  description = "The role deploy/snowflake's storage integration assumes (its exports_role_arn), once snowflake_storage_integration is set."
  value       = one(aws_iam_role.snowflake_exports[*].arn)
}
