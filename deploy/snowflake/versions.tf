# The Snowflake objects dataferry needs, as their own root module: the AWS module
# validates offline without this provider, and each can be applied on its own.
terraform {
  required_version = ">= 1.6"

  required_providers {
    snowflake = {
      source  = "snowflakedb/snowflake"
      version = ">= 2.0, < 3.0"
    }
  }
}

# Account, user and key come from the environment (SNOWFLAKE_ORGANIZATION_NAME,
# SNOWFLAKE_ACCOUNT_NAME, SNOWFLAKE_USER, SNOWFLAKE_AUTHENTICATOR=SNOWFLAKE_JWT,
# SNOWFLAKE_PRIVATE_KEY): no secret is written in this module.
provider "snowflake" {
  role = var.admin_role
}
