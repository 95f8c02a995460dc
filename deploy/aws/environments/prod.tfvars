environment                = "prod"
vpc_id                     = "vpc-0123456789abcdef0"
private_subnet_ids         = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
allowed_security_group_ids = ["sg-0123456789abcdef0"]
db_instance_class          = "db.m7g.large"
db_allocated_storage_gb    = 100
db_backup_retention_days   = 14
db_performance_insights    = true
deletion_protection        = true
db_skip_final_snapshot     = false
github_repository          = "example-org/dataferry"

# The task's warehouse: deploy/snowflake's objects (name_prefix PROD_) and its service
# user's private key, kept in Secrets Manager and injected by ECS.
pipeline_environment = {
  SNOWFLAKE_ACCOUNT   = "example-org-example_account"
  SNOWFLAKE_USER      = "PROD_DATAFERRY_SVC"
  SNOWFLAKE_ROLE      = "PROD_DATAFERRY_LOADER"
  SNOWFLAKE_WAREHOUSE = "PROD_DATAFERRY_WH"
  SNOWFLAKE_DATABASE  = "PROD_DATAFERRY"
}
pipeline_secrets = {
  SNOWFLAKE_PRIVATE_KEY = "arn:aws:secretsmanager:us-west-2:123456789012:secret:dataferry/prod/snowflake-key-AbCdEf"
}
alarm_emails = ["data-oncall@example.org"]
