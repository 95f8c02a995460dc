# What should wake someone: the database short of CPU, storage, memory or connections,
# DynamoDB throttling or failing, the pipeline task ending in failure. All to one SNS
# topic; subscribe to it (var.alarm_emails, or anything SNS delivers to).
resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:Encrypted with var.kms_key_arn when given (its key policy must let cloudwatch.amazonaws.com and events.amazonaws.com use it); AWS's own aws/sns key would refuse both, and the alarms would never arrive.
  name              = "dataferry-alarms-${var.environment}"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sns_topic_subscription" "alarm_emails" {
  for_each  = toset(var.alarm_emails)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  db_alarms = {
    cpu = {
      metric      = "CPUUtilization"
      comparison  = "GreaterThanThreshold"
      threshold   = var.alarm_db_cpu_percent
      description = "PostgreSQL CPU above ${var.alarm_db_cpu_percent}% for 15 minutes"
    }
    free-storage = {
      metric      = "FreeStorageSpace"
      comparison  = "LessThanThreshold"
      threshold   = var.alarm_db_free_storage_gb * 1024 * 1024 * 1024
      description = "PostgreSQL free storage under ${var.alarm_db_free_storage_gb} GiB"
    }
    freeable-memory = {
      metric      = "FreeableMemory"
      comparison  = "LessThanThreshold"
      threshold   = var.alarm_db_freeable_memory_mb * 1024 * 1024
      description = "PostgreSQL freeable memory under ${var.alarm_db_freeable_memory_mb} MiB"
    }
    connections = {
      metric      = "DatabaseConnections"
      comparison  = "GreaterThanThreshold"
      threshold   = var.alarm_db_connections
      description = "More than ${var.alarm_db_connections} PostgreSQL connections"
    }
  }
  # DynamoDB: per table, throttled reads and writes, and system errors of the writes
  # load nosql sends and the scans the etl sends.
  ddb_alarms = merge([
    for name, t in aws_dynamodb_table.dataset : {
      "${name}-write-throttles" = { table = t.name, metric = "WriteThrottleEvents", operation = null }
      "${name}-read-throttles"  = { table = t.name, metric = "ReadThrottleEvents", operation = null }
      "${name}-errors-write"    = { table = t.name, metric = "SystemErrors", operation = "BatchWriteItem" }
      "${name}-errors-scan"     = { table = t.name, metric = "SystemErrors", operation = "Scan" }
    }
  ]...)
}

resource "aws_cloudwatch_metric_alarm" "db" {
  for_each            = local.db_alarms
  alarm_name          = "dataferry-${var.environment}-postgres-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/RDS"
  metric_name         = each.value.metric
  dimensions          = { DBInstanceIdentifier = aws_db_instance.postgres.identifier }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = each.value.comparison
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "dynamodb" {
  for_each          = local.ddb_alarms
  alarm_name        = "dataferry-${var.environment}-dynamodb-${each.key}"
  alarm_description = "DynamoDB ${each.value.table}: ${each.value.metric}${each.value.operation == null ? "" : " on ${each.value.operation}"}"
  namespace         = "AWS/DynamoDB"
  metric_name       = each.value.metric
  dimensions = merge(
    { TableName = each.value.table },
    each.value.operation == null ? {} : { Operation = each.value.operation },
  )
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
}

# The pipeline task stopped with a non-zero exit code (scheduled or from a workflow).
resource "aws_cloudwatch_event_rule" "pipeline_failed" {
  name        = "dataferry-${var.environment}-pipeline-failed"
  description = "The dataferry task ended with a non-zero exit code"
  event_pattern = jsonencode({
    source        = ["aws.ecs"]
    "detail-type" = ["ECS Task State Change"]
    detail = {
      clusterArn = [aws_ecs_cluster.pipeline.arn]
      lastStatus = ["STOPPED"]
      containers = { name = ["dataferry"], exitCode = [{ "anything-but" = 0 }] }
    }
  })
}

resource "aws_cloudwatch_event_target" "pipeline_failed" {
  rule      = aws_cloudwatch_event_rule.pipeline_failed.name
  target_id = "sns"
  arn       = aws_sns_topic.alarms.arn
}

data "aws_iam_policy_document" "alarms_topic" {
  statement {
    sid       = "CloudWatchAlarms"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }

  statement {
    sid       = "TheFailedTaskRule"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.pipeline_failed.arn]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarms_topic.json
}
