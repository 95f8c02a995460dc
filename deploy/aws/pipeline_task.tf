# dataferry runs inside the VPC, next to RDS: an ECS Fargate task in the private subnets,
# started by the GitHub workflows (deploy/run-pipeline-task.sh: run-task, wait, exit code
# and log tail) or on a schedule (EventBridge Scheduler). GitHub-hosted runners cannot
# reach a private database; a task here can, and needs no runner of its own.

locals {
  pipeline_name = "dataferry-${var.environment}"
  # What the production spec reads from its environment (examples/retail/production.yaml):
  # the endpoints Terraform knows, so no one copies them by hand.
  pipeline_environment = merge(
    {
      AWS_REGION                  = var.region
      DATAFERRY_RDS_HOST          = aws_db_instance.postgres.address
      DATAFERRY_RDS_PORT          = tostring(aws_db_instance.postgres.port)
      DATAFERRY_RDS_DATABASE      = aws_db_instance.postgres.db_name
      DATAFERRY_RDS_USER          = var.pipeline_db_user
      DATAFERRY_TABLE_PREFIX      = var.table_name_prefix
      DATAFERRY_LEDGER_TABLE      = aws_dynamodb_table.ledger.name
      DATAFERRY_EXPORT_BUCKET     = aws_s3_bucket.exports.bucket
      DATAFERRY_DYNAMODB_REGION   = var.region
      DATAFERRY_DYNAMODB_ENDPOINT = "aws"
      DATAFERRY_REJECTS_DIR       = "/scratch/rejects"
      HOME                        = "/scratch" # the Snowflake connector's caches
      TMPDIR                      = "/scratch"
    },
    var.pipeline_environment,
  )
}

resource "aws_ecr_repository" "pipeline" {
  name                 = local.pipeline_name
  image_tag_mutability = "IMMUTABLE" # a tag is a commit: what ran can be told afterwards

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = var.kms_key_arn == null ? "AES256" : "KMS"
    kms_key         = var.kms_key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "pipeline" {
  repository = aws_ecr_repository.pipeline.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the last ${var.images_kept} images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.images_kept
      }
      action = { type = "expire" }
    }]
  })
}

resource "aws_ecs_cluster" "pipeline" {
  name = local.pipeline_name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "pipeline" {
  name              = "/ecs/${local.pipeline_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

# ---- network: out to AWS's APIs and Snowflake (443), and into PostgreSQL (5432) only
resource "aws_security_group" "pipeline" {
  #checkov:skip=CKV2_AWS_5:Attached when the task starts (run-task from the workflows, and the schedule when one is set), which checkov cannot see.
  name        = "${local.pipeline_name}-task"
  description = "The dataferry task: HTTPS out, PostgreSQL out to the database; nothing in"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "pipeline_https" {
  #checkov:skip=CKV_AWS_382:The task calls AWS APIs (DynamoDB, S3, STS, ECR, logs) and Snowflake over HTTPS, whose addresses are not fixed; add VPC endpoints and narrow this where the network allows.
  security_group_id = aws_security_group.pipeline.id
  description       = "HTTPS to AWS APIs and Snowflake"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "pipeline_postgres" {
  security_group_id            = aws_security_group.pipeline.id
  description                  = "PostgreSQL"
  referenced_security_group_id = aws_security_group.postgres.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_ingress_rule" "postgres_from_pipeline" {
  security_group_id            = aws_security_group.postgres.id
  description                  = "PostgreSQL from the dataferry task"
  referenced_security_group_id = aws_security_group.pipeline.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

# ---- roles: ECS's (pull the image, write logs, read the Snowflake key) and the task's own
data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "pipeline_execution" {
  name               = "${local.pipeline_name}-execution"
  description        = "ECS pulls the dataferry image, writes its logs, injects its secrets"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "pipeline_execution" {
  statement {
    sid       = "PullTheImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [aws_ecr_repository.pipeline.arn]
  }

  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }

  statement {
    sid       = "WriteTheTaskLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.pipeline.arn}:*"]
  }

  dynamic "statement" {
    for_each = length(var.pipeline_secrets) > 0 ? [1] : []
    content {
      sid     = "InjectTheSecrets"
      actions = ["secretsmanager:GetSecretValue"]
      # the secret's own ARN, without a ":json-key::" suffix that valueFrom may add
      resources = distinct([for arn in values(var.pipeline_secrets) : join(":", slice(split(":", arn), 0, 7))])
    }
  }
}

resource "aws_iam_role_policy" "pipeline_execution" {
  name   = "pull-log-secrets"
  role   = aws_iam_role.pipeline_execution.id
  policy = data.aws_iam_policy_document.pipeline_execution.json
}

resource "aws_iam_role" "pipeline_task" {
  name               = "${local.pipeline_name}-task"
  description        = "What dataferry itself may do: the pipeline policy"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "pipeline_task" {
  role       = aws_iam_role.pipeline_task.name
  policy_arn = aws_iam_policy.pipeline.arn
}

resource "aws_ecs_task_definition" "pipeline" {
  family                   = local.pipeline_name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.pipeline_execution.arn
  task_role_arn            = aws_iam_role.pipeline_task.arn

  # Fargate's ephemeral storage, gone with the task: temporary files, the rejects files
  # and the run report (uploaded to the job by deploy/run-pipeline-task.sh from the logs).
  volume {
    name = "scratch"
  }

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.task_architecture
  }

  container_definitions = jsonencode([{
    name                   = "dataferry"
    image                  = "${aws_ecr_repository.pipeline.repository_url}:${var.image_tag}"
    essential              = true
    command                = var.pipeline_command
    readonlyRootFilesystem = true # what it writes goes to /scratch, the task's own storage
    user                   = "10001"
    mountPoints            = [{ sourceVolume = "scratch", containerPath = "/scratch", readOnly = false }]
    environment            = [for k, v in local.pipeline_environment : { name = k, value = v }]
    secrets                = [for k, arn in var.pipeline_secrets : { name = k, valueFrom = arn }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.pipeline.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "dataferry"
      }
    }
  }])
}

# ---- periodic runs without GitHub
resource "aws_scheduler_schedule" "pipeline" {
  #checkov:skip=CKV_AWS_297:Encrypted with var.kms_key_arn when given, else AWS's own key; the schedule holds no secret (the task's settings are in its definition).
  count       = var.pipeline_schedule == null ? 0 : 1
  name        = local.pipeline_name
  description = "dataferry ${join(" ", var.pipeline_command)}, ${var.pipeline_schedule}"

  schedule_expression          = var.pipeline_schedule
  schedule_expression_timezone = "UTC"
  kms_key_arn                  = var.kms_key_arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_ecs_cluster.pipeline.arn
    role_arn = aws_iam_role.scheduler[0].arn

    ecs_parameters {
      # the family without a revision: the latest one, which the workflows register
      task_definition_arn = trimsuffix(aws_ecs_task_definition.pipeline.arn, ":${aws_ecs_task_definition.pipeline.revision}")
      launch_type         = "FARGATE"

      network_configuration {
        subnets          = var.private_subnet_ids
        security_groups  = [aws_security_group.pipeline.id]
        assign_public_ip = false
      }
    }

    retry_policy {
      maximum_retry_attempts = 0 # a failed run is reported (alarm), not run twice at once
    }
  }
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  count              = var.pipeline_schedule == null ? 0 : 1
  name               = "${local.pipeline_name}-scheduler"
  description        = "EventBridge Scheduler starts the dataferry task"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

# Starting the task: what the schedule and the GitHub jobs (iam.tf, launcher) both need.
data "aws_iam_policy_document" "run_pipeline_task" {
  statement {
    sid     = "RunThePipelineTask"
    actions = ["ecs:RunTask"]
    resources = [
      "arn:${data.aws_partition.current.partition}:ecs:${var.region}:${data.aws_caller_identity.current.account_id}:task-definition/${local.pipeline_name}:*",
    ]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.pipeline.arn]
    }
  }

  statement {
    sid       = "HandItsRolesToECS"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.pipeline_execution.arn, aws_iam_role.pipeline_task.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "scheduler" {
  count  = var.pipeline_schedule == null ? 0 : 1
  name   = "run-the-pipeline-task"
  role   = aws_iam_role.scheduler[0].id
  policy = data.aws_iam_policy_document.run_pipeline_task.json
}
