"""What people and other programs touch: feedback, local API, status, metrics, sd_notify, logs."""
