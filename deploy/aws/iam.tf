# Least privilege for the pipeline, and a role GitHub Actions assumes through OIDC
# (no static AWS keys anywhere).
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  table_arns = concat(
    [for t in aws_dynamodb_table.dataset : t.arn],
    [aws_dynamodb_table.ledger.arn],
  )
  db_user_arn = join(":", [
    "arn", data.aws_partition.current.partition, "rds-db", data.aws_region.current.name,
    data.aws_caller_identity.current.account_id,
    "dbuser", "${aws_db_instance.postgres.resource_id}/${var.pipeline_db_user}",
  ])
}

# dataferry's own ledger of DynamoDB loads (the pipeline would create it otherwise).
resource "aws_dynamodb_table" "ledger" {
  name                        = "${var.table_name_prefix}dataferry_loads"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "dataset"
  range_key                   = "started_at"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "dataset"
    type = "S"
  }

  attribute {
    name = "started_at"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}

data "aws_iam_policy_document" "pipeline" {
  # No ListTables (it can only be granted on every table): readiness is a DescribeTable
  # of the ledger table, which is among these.
  statement {
    sid = "DynamoDBTablesOfThePipelineOnly"
    actions = [
      "dynamodb:DescribeTable",
      "dynamodb:BatchWriteItem",
      "dynamodb:PutItem",
      "dynamodb:GetItem",
      "dynamodb:Query",
      "dynamodb:Scan",
      "dynamodb:DescribeContinuousBackups",
    ]
    resources = concat(local.table_arns, [for arn in local.table_arns : "${arn}/index/*"])
  }

  statement {
    sid       = "PostgresAsThePipelineUserThroughIAM"
    actions   = ["rds-db:connect"]
    resources = [local.db_user_arn]
  }

  statement {
    sid       = "ExportTheTables"
    actions   = ["dynamodb:ExportTableToPointInTime"]
    resources = [for t in aws_dynamodb_table.dataset : t.arn]
  }

  statement {
    sid       = "FollowTheExports"
    actions   = ["dynamodb:DescribeExport"]
    resources = [for t in aws_dynamodb_table.dataset : "${t.arn}/export/*"]
  }

  statement {
    sid       = "WriteAndReadTheExports"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.exports.arn}/*"]
  }

  statement {
    sid       = "ListTheExports"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.exports.arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "UseTheTablesAndExportsKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
      resources = [statement.value]
    }
  }

  # No Secrets Manager statement: the pipeline logs in as its own role with IAM tokens
  # (`dataferry db bootstrap` makes that role, run once with the master's secret).
}

resource "aws_iam_policy" "pipeline" {
  name        = "dataferry-pipeline-${var.environment}"
  description = "What dataferry needs: its DynamoDB tables and rds-db:connect as its database role"
  policy      = data.aws_iam_policy_document.pipeline.json
}

resource "aws_iam_openid_connect_provider" "github" {
  count           = var.github_repository != null && var.create_github_oidc_provider ? 1 : 0
  url             = "https://token.actions.githubusercontent.com"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1"]
}

data "aws_iam_policy_document" "github_assume" {
  #checkov:skip=CKV_AWS_358:The sub claim is pinned to "repo:<owner>/<name>:environment:<env>" from variables (validated below); checkov cannot resolve them and sees the null default.
  count = var.github_repository != null ? 1 : 0

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type = "Federated"
      identifiers = [
        "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:oidc-provider/token.actions.githubusercontent.com",
      ]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["repo:${var.github_repository}:environment:${var.github_environment}"]
    }
  }
}

resource "aws_iam_role" "github_pipeline" {
  count                = var.github_repository != null ? 1 : 0
  name                 = "dataferry-github-${var.environment}"
  description          = "Assumed by ${var.github_repository}'s ${var.github_environment} jobs through OIDC"
  assume_role_policy   = data.aws_iam_policy_document.github_assume[0].json
  max_session_duration = 3600
}

# GitHub's jobs touch no data: they push the image and start the task in the VPC, which
# has the pipeline policy (pipeline_task.tf).
data "aws_iam_policy_document" "launcher" {
  # run-task and iam:PassRole, as the schedule has them (pipeline_task.tf)
  source_policy_documents = [data.aws_iam_policy_document.run_pipeline_task.json]

  statement {
    sid = "PushThePipelineImage"
    actions = [
      "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CompleteLayerUpload",
      "ecr:DescribeImages", "ecr:GetDownloadUrlForLayer", "ecr:InitiateLayerUpload",
      "ecr:PutImage", "ecr:UploadLayerPart",
    ]
    resources = [aws_ecr_repository.pipeline.arn]
  }

  statement {
    sid = "EcrLoginAndTaskDefinitions"
    # none of these has resource-level permissions
    actions   = ["ecr:GetAuthorizationToken", "ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"]
    resources = ["*"]
  }

  statement {
    sid       = "FollowTheTask"
    actions   = ["ecs:DescribeTasks"]
    resources = ["arn:${data.aws_partition.current.partition}:ecs:${var.region}:${data.aws_caller_identity.current.account_id}:task/${aws_ecs_cluster.pipeline.name}/*"]
  }

  statement {
    sid       = "ReadTheTaskLog"
    actions   = ["logs:GetLogEvents"]
    resources = ["${aws_cloudwatch_log_group.pipeline.arn}:log-stream:*"]
  }
}

resource "aws_iam_policy" "launcher" {
  name        = "dataferry-launcher-${var.environment}"
  description = "What the GitHub jobs need: push the pipeline image, run its task, read its log"
  policy      = data.aws_iam_policy_document.launcher.json
}

resource "aws_iam_role_policy_attachment" "github_pipeline" {
  count      = var.github_repository != null ? 1 : 0
  role       = aws_iam_role.github_pipeline[0].name
  policy_arn = aws_iam_policy.launcher.arn
}
