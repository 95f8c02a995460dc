output "dynamodb_table_names" {
  description = "Table name per dataset table of the spec."
  value       = { for k, t in aws_dynamodb_table.dataset : k => t.name }
}

output "dynamodb_table_arns" {
  description = "Table ARN per dataset table of the spec (for least-privilege IAM policies)."
  value       = { for k, t in aws_dynamodb_table.dataset : k => t.arn }
}
