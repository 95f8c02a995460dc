# `terraform test` with a mocked AWS provider: the variable validations refuse what they
# must, and each environment's settings plan into what they promise. Offline: nothing
# reaches AWS. Run with `terraform test -var-file=environments/<env>.tfvars`.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "us-west-2" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_resource "aws_ecs_task_definition" {
    defaults = {
      arn      = "arn:aws:ecs:us-west-2:123456789012:task-definition/dataferry-test:3"
      revision = 3
    }
  }
  # ARNs the provider checks the shape of where they are used: made-up but well-formed
  mock_resource "aws_sns_topic" {
    defaults = { arn = "arn:aws:sns:us-west-2:123456789012:dataferry-alarms-test" }
  }
  mock_resource "aws_ecs_cluster" {
    defaults = { arn = "arn:aws:ecs:us-west-2:123456789012:cluster/dataferry-test" }
  }
  mock_resource "aws_ecr_repository" {
    defaults = {
      arn            = "arn:aws:ecr:us-west-2:123456789012:repository/dataferry-test"
      repository_url = "123456789012.dkr.ecr.us-west-2.amazonaws.com/dataferry-test"
    }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/dataferry-test" }
  }
  mock_resource "aws_iam_policy" {
    defaults = { arn = "arn:aws:iam::123456789012:policy/dataferry-test" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:us-west-2:123456789012:log-group:/ecs/dataferry-test" }
  }
  mock_resource "aws_cloudwatch_event_rule" {
    defaults = { arn = "arn:aws:events:us-west-2:123456789012:rule/dataferry-test" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = {
      arn    = "arn:aws:s3:::dataferry-exports-test"
      bucket = "dataferry-exports-test"
    }
  }
  mock_resource "aws_dynamodb_table" {
    defaults = { arn = "arn:aws:dynamodb:us-west-2:123456789012:table/dataferry-test" }
  }
  mock_resource "aws_iam_openid_connect_provider" {
    defaults = { arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com" }
  }
  mock_resource "aws_db_instance" {
    defaults = {
      master_user_secret = [{ secret_arn = "arn:aws:secretsmanager:us-west-2:123456789012:secret:rds!db-1", kms_key_id = "", secret_status = "active" }]
      resource_id        = "db-ABCDEFGHIJKL"
    }
  }
}

# apply with the mocked provider: every value is made up locally, so conditions on ids
# can be evaluated; nothing is created anywhere.
run "the_environment_applies" {
  command = apply

  assert {
    condition     = aws_db_instance.postgres.max_allocated_storage >= aws_db_instance.postgres.allocated_storage
    error_message = "storage autoscaling has a ceiling at least the starting size"
  }
  assert {
    condition     = aws_db_instance.postgres.publicly_accessible == false
    error_message = "the database is private"
  }
  assert {
    condition     = aws_cloudwatch_log_group.postgres.retention_in_days == var.log_retention_days
    error_message = "RDS logs are kept for log_retention_days, not forever"
  }
  assert {
    condition     = aws_ecs_task_definition.pipeline.network_mode == "awsvpc" && aws_ecs_task_definition.pipeline.requires_compatibilities == toset(["FARGATE"])
    error_message = "the pipeline runs as a Fargate task in the VPC"
  }
  assert {
    condition     = aws_vpc_security_group_ingress_rule.postgres_from_pipeline.referenced_security_group_id == aws_security_group.pipeline.id
    error_message = "the task's security group reaches PostgreSQL"
  }
  assert {
    condition     = length([for s in data.aws_iam_policy_document.pipeline.statement : s if anytrue([for a in s.actions : startswith(a, "secretsmanager:")])]) == 0
    error_message = "the pipeline's policy reads no secret (IAM tokens, not the master's password)"
  }
  assert {
    condition     = length([for s in data.aws_iam_policy_document.launcher.statement : s if anytrue([for a in s.actions : startswith(a, "dynamodb:") || startswith(a, "rds-db:") || startswith(a, "s3:") || startswith(a, "secretsmanager:")])]) == 0
    error_message = "the GitHub jobs touch no data: they push the image and start the task"
  }
  assert {
    condition     = length([for s in data.aws_iam_policy_document.pipeline.statement : s if contains(s.actions, "dynamodb:ExportTableToPointInTime")]) == 1
    error_message = "the pipeline may export its tables (etl.method: export)"
  }
  assert {
    condition     = one([for r in aws_s3_bucket_lifecycle_configuration.exports.rule : r.expiration[0].days]) == var.export_retention_days
    error_message = "exports expire"
  }
  assert {
    condition     = aws_s3_bucket_public_access_block.exports.restrict_public_buckets
    error_message = "the exports bucket is private"
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.db) == 4
    error_message = "CPU, free storage, freeable memory and connections alarms on the database"
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.dynamodb) == 4 * length(var.dynamodb_tables)
    error_message = "throttles and system errors alarms on every table"
  }
  assert {
    condition = alltrue([
      for name in keys(var.pipeline_secrets) :
      contains([for s in jsondecode(aws_ecs_task_definition.pipeline.container_definitions)[0].secrets : s.name], name)
    ])
    error_message = "every pipeline secret reaches the task through ECS (the Snowflake key)"
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.pipeline.container_definitions)[0].readonlyRootFilesystem
    error_message = "the task's root filesystem is read-only"
  }
  assert {
    condition     = length(aws_iam_role.snowflake_exports) == 0
    error_message = "no role for Snowflake until its storage integration is given"
  }
  assert {
    condition     = length(aws_scheduler_schedule.pipeline) == (var.pipeline_schedule == null ? 0 : 1)
    error_message = "a schedule exactly when one is asked for"
  }
}

run "snowflake_gets_a_role_only_with_its_integration" {
  command = plan

  variables {
    snowflake_storage_integration = {
      iam_user_arn = "arn:aws:iam::999999999999:user/abc1-s-v2st0001"
      external_id  = "AB12345_SFCRole=2_abcdefg="
    }
  }

  assert {
    condition     = length(aws_iam_role.snowflake_exports) == 1 && length(aws_iam_role_policy.snowflake_exports) == 1
    error_message = "the integration's role and its read-only policy exist once the integration is given"
  }
}

run "a_schedule_runs_the_latest_task_revision" {
  command = apply

  variables {
    pipeline_schedule = "cron(0 6 * * ? *)"
  }

  assert {
    condition     = aws_scheduler_schedule.pipeline[0].target[0].ecs_parameters[0].task_definition_arn == "arn:aws:ecs:us-west-2:123456789012:task-definition/dataferry-test"
    error_message = "the schedule names the family, so the revision the workflows register last runs"
  }
  assert {
    condition     = aws_scheduler_schedule.pipeline[0].target[0].ecs_parameters[0].network_configuration[0].assign_public_ip == false
    error_message = "the scheduled task stays in the private subnets"
  }
}

run "narrow_ranges_are_accepted" {
  command = plan

  variables {
    allowed_cidr_blocks = ["10.1.0.0/16", "10.2.3.0/24", "192.168.1.7/32"]
  }
}

run "the_whole_internet_is_refused" {
  command = plan
  variables {
    allowed_cidr_blocks = ["0.0.0.0/0"]
  }
  expect_failures = [var.allowed_cidr_blocks]
}

run "half_the_internet_is_refused_too" {
  command = plan
  variables {
    allowed_cidr_blocks = ["0.0.0.0/1"]
  }
  expect_failures = [var.allowed_cidr_blocks]
}

run "a_slash_8_is_refused" {
  command = plan
  variables {
    allowed_cidr_blocks = ["10.0.0.0/8"]
  }
  expect_failures = [var.allowed_cidr_blocks]
}

run "a_range_without_its_width_is_refused" {
  command = plan
  variables {
    allowed_cidr_blocks = ["10.0.0.1"]
  }
  expect_failures = [var.allowed_cidr_blocks]
}

run "storage_cannot_autoscale_below_its_start" {
  command = plan
  variables {
    db_allocated_storage_gb     = 200
    db_max_allocated_storage_gb = 100
  }
  expect_failures = [var.db_max_allocated_storage_gb]
}

run "a_schedule_must_be_an_expression" {
  command = plan
  variables {
    pipeline_schedule = "every day"
  }
  expect_failures = [var.pipeline_schedule]
}
