# PostgreSQL 16 for load sql: private, encrypted, TLS only, password kept by Secrets Manager.
resource "aws_db_subnet_group" "postgres" {
  name       = "dataferry-${var.environment}"
  subnet_ids = var.private_subnet_ids
}

resource "aws_security_group" "postgres" {
  name        = "dataferry-postgres-${var.environment}"
  description = "PostgreSQL for dataferry: only the listed CIDRs and security groups, on 5432"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "postgres_cidr" {
  for_each          = toset(var.allowed_cidr_blocks)
  security_group_id = aws_security_group.postgres.id
  description       = "PostgreSQL from ${each.value}"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
}

resource "aws_vpc_security_group_ingress_rule" "postgres_sg" {
  for_each                     = toset(var.allowed_security_group_ids)
  security_group_id            = aws_security_group.postgres.id
  description                  = "PostgreSQL from ${each.value}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_db_parameter_group" "postgres" {
  name        = "dataferry-postgres16-${var.environment}"
  family      = "postgres16"
  description = "dataferry: TLS required, slow statements and connections logged"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "5000"
  }
}

# Enhanced monitoring: OS metrics every var.db_monitoring_interval seconds.
resource "aws_iam_role" "rds_monitoring" {
  name = "dataferry-rds-monitoring-${var.environment}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "postgres" {
  #checkov:skip=CKV_AWS_353:Performance Insights is a per-environment choice (var.db_performance_insights, on in prod.tfvars); it is not offered on the smallest instance classes used for dev.
  identifier     = "dataferry-${var.environment}"
  engine         = "postgres"
  engine_version = "16"
  instance_class = var.db_instance_class

  db_name                     = var.db_name
  username                    = var.db_username
  manage_master_user_password = true # RDS generates it and keeps it in Secrets Manager

  allocated_storage     = var.db_allocated_storage_gb
  max_allocated_storage = var.db_max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  db_subnet_group_name   = aws_db_subnet_group.postgres.name
  vpc_security_group_ids = [aws_security_group.postgres.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.postgres.name

  iam_database_authentication_enabled = true
  backup_retention_period             = var.db_backup_retention_days
  copy_tags_to_snapshot               = true
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = var.db_skip_final_snapshot
  # A name per instance: a fixed one would clash with the snapshot of the instance before.
  final_snapshot_identifier       = "dataferry-${var.environment}-final-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  auto_minor_version_upgrade      = true
  multi_az                        = var.environment == "prod"
  enabled_cloudwatch_logs_exports = ["postgresql"]

  monitoring_interval = var.db_monitoring_interval
  monitoring_role_arn = aws_iam_role.rds_monitoring.arn

  performance_insights_enabled    = var.db_performance_insights
  performance_insights_kms_key_id = var.db_performance_insights ? var.kms_key_arn : null

  depends_on = [aws_cloudwatch_log_group.postgres] # made with its retention before RDS makes it without

  lifecycle {
    ignore_changes = [final_snapshot_identifier] # set once, when the instance is made
  }
}

# RDS would create this group itself, keeping the logs forever.
resource "aws_cloudwatch_log_group" "postgres" {
  name              = "/aws/rds/instance/dataferry-${var.environment}/postgresql"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}
