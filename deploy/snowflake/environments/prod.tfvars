name_prefix          = "PROD_"
warehouse_size       = "SMALL"
auto_suspend_seconds = 60
data_retention_days  = 7
# service_user_rsa_public_key comes from TF_VAR_service_user_rsa_public_key (CI secret).
