# terraform plan -var-file=environments/dev.tfvars (the DynamoDB tables come from
# dynamodb_tables.auto.tfvars.json, written by `dataferry tf export`).
environment              = "dev"
table_name_prefix        = "dev-"
vpc_id                   = "vpc-0123456789abcdef0"
private_subnet_ids       = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
allowed_cidr_blocks      = ["10.20.0.0/16"]
db_instance_class        = "db.t4g.micro"
db_skip_final_snapshot   = true
deletion_protection      = false
db_backup_retention_days = 1
