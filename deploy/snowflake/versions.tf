# The Snowflake objects dataferry needs, as their own root module: the AWS module
# validates offline without this provider, and each can be applied on its own.
terraform {
  required_version = ">= 1.10"

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
#
# Each object is made by the system role meant for it, not by ACCOUNTADMIN: SYSADMIN owns
# the warehouse and the database, SECURITYADMIN the roles, the user and the grants.
# ACCOUNTADMIN is used for the resource monitor alone, which Snowflake lets only account
# administrators create.
provider "snowflake" {
  alias = "sysadmin"
  role  = "SYSADMIN"
}

provider "snowflake" {
  alias = "securityadmin"
  role  = "SECURITYADMIN"
}

provider "snowflake" {
  alias = "accountadmin"
  role  = "ACCOUNTADMIN"
}
