output "state_bucket" {
  description = "The Terraform state bucket (environments/*.s3.tfbackend: bucket)."
  value       = aws_s3_bucket.state.bucket
}

output "plan_role_arn" {
  description = "Repository secret AWS_TERRAFORM_PLAN_ROLE_ARN: read-only plans."
  value       = aws_iam_role.plan.arn
}

output "apply_role_arn" {
  description = "Repository secret AWS_TERRAFORM_ROLE_ARN: applies, production environment only."
  value       = aws_iam_role.apply.arn
}
