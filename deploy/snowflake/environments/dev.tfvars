name_prefix          = "DEV_"
warehouse_size       = "XSMALL"
auto_suspend_seconds = 60
data_retention_days  = 1
