# Where DynamoDB table exports land (etl.method: export): private, encrypted, TLS only,
# and emptied after var.export_retention_days (an export is read once, by the etl that
# asked for it).
resource "aws_s3_bucket" "exports" {
  #checkov:skip=CKV_AWS_144:Exports are transient copies of DynamoDB tables, read once and expired: a replica in another region would only hold more copies.
  #checkov:skip=CKV_AWS_18:Access logging needs a log bucket of the account's; the bucket is private and its use is in CloudTrail's data events where the account has them on.
  #checkov:skip=CKV2_AWS_62:Nothing listens for new exports: the etl waits for its own export to finish.
  bucket_prefix = "dataferry-exports-${var.environment}-"
  force_destroy = var.environment != "prod"
}

resource "aws_s3_bucket_public_access_block" "exports" {
  bucket                  = aws_s3_bucket.exports.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "exports" {
  bucket = aws_s3_bucket.exports.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "exports" {
  bucket = aws_s3_bucket.exports.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "exports" {
  bucket = aws_s3_bucket.exports.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "exports" {
  bucket = aws_s3_bucket.exports.id

  rule {
    id     = "expire-exports"
    status = "Enabled"
    filter {}
    expiration {
      days = var.export_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "exports_tls_only" {
  statement {
    sid       = "DenyPlainHTTP"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.exports.arn, "${aws_s3_bucket.exports.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "exports" {
  bucket = aws_s3_bucket.exports.id
  policy = data.aws_iam_policy_document.exports_tls_only.json
}

# Snowflake reads the exports itself when the pipeline's warehouse is Snowflake and its
# spec names a storage integration (warehouse.snowflake.storage_integration): a role that
# Snowflake's own IAM user assumes, with the integration's external ID, and that may
# only read the exports. deploy/snowflake makes the integration and prints the two
# values this needs (storage_aws_iam_user_arn, storage_aws_external_id); until they are
# given, no role exists and exports are read through the pipeline's task.
data "aws_iam_policy_document" "snowflake_trust" {
  count = var.snowflake_storage_integration == null ? 0 : 1
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = [var.snowflake_storage_integration.iam_user_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.snowflake_storage_integration.external_id]
    }
  }
}

data "aws_iam_policy_document" "snowflake_reads_exports" {
  count = var.snowflake_storage_integration == null ? 0 : 1
  statement {
    sid       = "ReadTheExportsOnly"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.exports.arn}/${var.snowflake_storage_integration.prefix}*"]
  }
  statement {
    sid       = "ListTheExportsOnly"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.exports.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.snowflake_storage_integration.prefix}*"]
    }
  }
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "DecryptTheExports"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role" "snowflake_exports" {
  count                = var.snowflake_storage_integration == null ? 0 : 1
  name                 = "dataferry-snowflake-exports-${var.environment}"
  description          = "Snowflake's storage integration: reads the DynamoDB exports."
  assume_role_policy   = data.aws_iam_policy_document.snowflake_trust[0].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "snowflake_exports" {
  count  = var.snowflake_storage_integration == null ? 0 : 1
  name   = "read-exports"
  role   = aws_iam_role.snowflake_exports[0].id
  policy = data.aws_iam_policy_document.snowflake_reads_exports[0].json
}
